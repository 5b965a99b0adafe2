"""Report a mutation run: the score over the modules that guard users, and every mutant that survived.

``nox -s mutation`` runs mutmut (settings in pyproject.toml, ``[tool.mutmut]``), then ``python -m tests.mutation``,
which reads mutmut's results from ``mutants/``, counts the mutants listed in ``tests/mutation-equivalents.txt`` as
equivalent (they cannot change behaviour) and fails under the target score. Standard library only.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from tests.helpers import ROOT

MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.txt"
TARGET = 95.0
# Of devtools/databases.py only creating and dropping databases is in scope: roles, grants, sessions and row counts
# are mutated with the rest of the file (mutmut mutates whole files) but left out of the score.
OUT_OF_SCOPE = tuple(
    f"devtools.databases.x_{name}__mutmut_"
    for name in ("ensure_role", "grant_rows_only", "terminate_connections", "table_counts", "row_counts")
)
# mutmut's exit codes per mutant: a failing test (1), an error in pytest (3) or a time-out (SIGXCPU and friends)
# kill it; 0 means every test passed, 33 and 5 that no test ran it.
KILLED = {1, 3, 24, -24, 36, 152, 255}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 35: "suspicious", None: "not checked"}


def results(mutants: Path = MUTANTS) -> dict[str, int | None]:
    """Return every mutant's exit code, by mutant name, from mutmut's ``.meta`` files."""
    codes: dict[str, int | None] = {}
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return codes


def equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """Return ``{mutant name: reason}`` from the equivalents file: one ``NAME  reason`` per line, ``#`` comments."""
    listed = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path.name}: line {number} lists {name} without a reason; say why it is equivalent.")
        listed[name] = reason.strip()
    return listed


def module_of(mutant: str) -> str:
    """Return the module a mutant lives in (``project.configuration.x_load_config__mutmut_3`` → its module)."""
    return mutant.split(".x")[0] if ".x" in mutant else mutant.rsplit(".", 1)[0]


def main() -> int:
    codes = {name: code for name, code in results().items() if not name.startswith(OUT_OF_SCOPE)}
    if not codes:
        print("No mutation results in mutants/: run `nox -s mutation`.", file=sys.stderr)
        return 2
    listed = equivalents()
    killed = {name for name, code in codes.items() if code in KILLED}
    equivalent = {name for name in codes if name in listed and name not in killed}
    survivors = sorted(set(codes) - killed - equivalent)
    counted = len(codes) - len(equivalent)
    score = 100.0 * len(killed) / counted if counted else 100.0

    per_module = Counter(module_of(name) for name in codes)
    killed_per_module = Counter(module_of(name) for name in killed)
    equivalent_per_module = Counter(module_of(name) for name in equivalent)
    print(f"{'module':<28} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8}")
    for module in sorted(per_module):
        total, dead, same = per_module[module], killed_per_module[module], equivalent_per_module[module]
        print(f"{module:<28} {total:>7} {dead:>7} {same:>7} {total - dead - same:>8}")
    if survivors:
        print(f"\nSurviving mutants ({len(survivors)}; `mutmut show NAME` prints the change):")
        for name in survivors:
            print(f"  {name}  [{STATUS.get(codes[name], f'exit code {codes[name]}')}]")
    for name in sorted(set(listed) & killed):
        print(f"note: {name} is listed as equivalent but a test kills it; remove it from {EQUIVALENTS.name}.")
    for name in sorted(set(listed) - set(codes)):
        print(f"note: {name} is listed as equivalent but no longer exists; remove it from {EQUIVALENTS.name}.")
    print(
        f"\nMutation score: {len(killed)} of {counted} mutants killed ({score:.1f} %); "
        f"{len(equivalent)} more listed as equivalent. Target: {TARGET:.0f} %."
    )
    return 0 if score >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
