"""Run the benchmarks: ``nox -s bench`` (or ``python -m tests.benchmarks [NAME ...] [--json FILE]``).

Each benchmark measures the project's way and a baseline in the same run, interleaved (A, B, A, B, ...), and
prints their ratio with its spread next to its goal. Nothing here passes or fails: the figures are for reading,
and ``--json`` writes them for comparing runs over time. ``harness.py`` holds what they share; each benchmark is
a module of its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

from tests.benchmarks.first_result import bench_first_result
from tests.benchmarks.harness import Measurement, print_table
from tests.benchmarks.install import bench_install
from tests.benchmarks.isolation import bench_isolation
from tests.benchmarks.scenarios import bench_scenarios
from tests.benchmarks.serving import bench_load

BENCHMARKS = {
    "isolation": bench_isolation,
    "first-result": bench_first_result,
    "install": bench_install,
    "scenarios": bench_scenarios,
    "load": bench_load,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark '{unknown[0]}'; choose from {', '.join(BENCHMARKS)}")
    rows: list[Measurement] = []
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += BENCHMARKS[name]()
    print_table(rows)
    if args.json:
        document = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": [{**r.__dict__, "met": r.met()} for r in rows],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
