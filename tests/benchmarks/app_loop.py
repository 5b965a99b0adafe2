"""P2c: the app-only loop (`nox -s app`) against the full suite (`nox -s tests`): time to the first test result
and wall time, each session run as a developer types it (with `-R`, its virtualenv reused)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tests.benchmarks.harness import Measurement
from tests.helpers import ROOT

# A test's result: pytest's progress characters at the start of a line, or after the test file's name. pytest
# writes them one by one on the line, so the output is read as it comes, not line by line.
RESULT = re.compile(r"^(tests/\S+ )?[.FEsxX]")


def session_times(*session: str) -> tuple[float, float]:
    """Run `nox -R -s SESSION`; return (seconds to its first test result, seconds to its end); raise when it fails."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {k: v for k, v in env.items() if not k.startswith(("POSTGRES_", "APPLICATION_CONFIG"))}
    started = time.perf_counter()
    first, line, output = None, "", []
    process = subprocess.Popen(
        [sys.executable, "-m", "nox", "-R", "-s", *session],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    while chunk := os.read(process.stdout.fileno(), 4096).decode(errors="replace"):
        output.append(chunk)
        for character in chunk:
            line = "" if character == "\n" else line + character
            if first is None and not line.startswith("nox >") and RESULT.match(line):
                first = time.perf_counter() - started
    if process.wait() != 0:
        raise RuntimeError(f"nox -s {' '.join(session)} failed:\n{''.join(output)[-4000:]}")
    return first if first is not None else float("nan"), time.perf_counter() - started


def bench_app_loop() -> list[Measurement]:
    """One round each: the full suite takes minutes, and its wall time is the point."""
    # As a developer's loop has them: each session's virtualenv made and installed by an earlier run.
    subprocess.run([sys.executable, "-m", "nox", "-s", "app", "tests", "--install-only"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    app_first, app_wall = session_times("app")
    full_first, full_wall = session_times("tests")
    return [
        Measurement(
            "P2c",
            "app loop (nox -s app) / full suite (nox -s tests): first result",
            f"{app_first:.2f} s",
            f"{full_first:.2f} s",
            app_first / full_first,
            "<= 1.0",
            "each session's own virtualenv reused (-R); one round, the full run takes minutes",
        ),
        Measurement(
            "P2d",
            "app loop (nox -s app) / full suite (nox -s tests): wall time",
            f"{app_wall:.1f} s",
            f"{full_wall:.1f} s",
            app_wall / full_wall,
            "<= 0.1",
            "the app's tests alone against every test of the setup",
        ),
    ]
