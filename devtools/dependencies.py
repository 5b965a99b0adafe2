"""The locked requirements: compile each layer's direct dependencies into a fully pinned file with hashes.

``requirements/<layer>.in`` lists what a layer needs directly; ``uv pip compile`` turns it into
``requirements/<layer>.txt``, where every package, indirect ones included, is pinned with the hashes of its
files, for every platform and Python the project supports (``--universal``). The layers are compiled from the
bottom up (production < testing < development) and each input is constrained by the compiled file below it,
so a package pinned in production has that version in every layer. Compiling keeps the pins already recorded
unless asked to upgrade, so ``lock`` after editing an input moves only what the edit requires.

``python -m devtools.dependencies check`` is the lint step: it compiles into a scratch copy and fails when the
result differs from the committed files, that is when an input changed without recompiling.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from devtools.errors import DependencyError

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("production", "testing", "development")
# The oldest Python the project supports: the resolution holds for it and every newer one (markers say where
# a package applies only to some).
PYTHON_VERSION = "3.11"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
# The Project-URL labels that name a changelog (PEP 753's well-known labels, normalised).
CHANGELOG_LABELS = ("changelog", "changes", "whatsnew", "history", "releasenotes", "news")


def canonical(name: str) -> str:
    """Return the normalised form of a distribution name (PEP 503), as the compiled files write it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """Return ``{name: version}`` for every package pinned in the compiled file ``path``."""
    pins = {}
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonical(match.group(1))] = match.group(2)
    return pins


def all_pins(root: Path) -> dict[str, dict[str, str]]:
    """Return the pins of every layer of the project at ``root``, by layer (empty where a file is missing)."""
    folder = root / "requirements"
    return {layer: read_pins(folder / f"{layer}.txt") if (folder / f"{layer}.txt").exists() else {} for layer in LAYERS}


def uv_executable() -> str:
    """Return the path of the uv binary installed with the development requirements."""
    try:
        from uv import find_uv_bin
    except ImportError:
        found = shutil.which("uv")
        if found:
            return found
        raise DependencyError(
            "uv is not installed: `pip install --require-hashes -r requirements/development.txt` installs it."
        ) from None
    return find_uv_bin()


def compile_layer(root: Path, layer: str, upgrade: Sequence[str] | bool = (), offline: bool = False) -> None:
    """Compile ``requirements/<layer>.in`` into its ``.txt`` at ``root``; ``upgrade`` is True for every package
    or the names of those to move to their newest allowed release. ``offline`` tries uv's cache alone first
    (a tenth of the time), then the index when the cache lacks something."""
    # The command as it lands in each file's header, which says how to reproduce the file and tells Dependabot
    # how to recompile it; --quiet, --upgrade* and the environment are left out of the header.
    command = [
        uv_executable(), "pip", "compile", "--quiet", "--universal", "--python-version", PYTHON_VERSION,
        "--generate-hashes", f"requirements/{layer}.in", "-o", f"requirements/{layer}.txt",
    ]  # fmt: skip
    if upgrade is True:
        command.append("--upgrade")
    elif upgrade:
        for name in upgrade:
            command += ["--upgrade-package", name]
    attempts = [{"UV_OFFLINE": "1"}, {}] if offline and not upgrade else [{}]
    for extra in attempts:
        env = {key: value for key, value in os.environ.items() if key != "UV_OFFLINE"} | extra
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            return
    detail = result.stderr.strip() or result.stdout.strip()
    raise DependencyError(f"requirements/{layer}.in cannot be compiled: {detail}")


def compile_all(root: Path, upgrade: Sequence[str] | bool = (), offline: bool = False) -> None:
    """Compile every layer from the bottom up, so each is constrained by the freshly compiled one below."""
    for layer in LAYERS:
        compile_layer(root, layer, upgrade, offline)


def changelog_url(name: str) -> str | None:
    """Return the changelog link the installed distribution ``name`` declares in its metadata, if any."""
    try:
        urls = metadata.metadata(name).get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if re.sub(r"[^a-z]", "", label.lower()) in CHANGELOG_LABELS and url.strip():
            return url.strip()
    return None


def describe_moves(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    """Return one line per package whose pin changed in any layer: ``name old -> new`` and its changelog."""
    old = {name: version for layer in LAYERS for name, version in before[layer].items()}
    new = {name: version for layer in LAYERS for name, version in after[layer].items()}
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) == new.get(name):
            continue
        link = changelog_url(name)
        line = f"{name} {old.get(name, '(new)')} -> {new.get(name, '(removed)')}"
        lines.append(f"{line}  {link}" if link else line)
    return lines


def lock(root: Path = ROOT) -> list[str]:
    """Compile every layer keeping the recorded pins; return what moved (after an input was edited)."""
    before = all_pins(root)
    with restored_on_error(root):
        compile_all(root, offline=True)
    return describe_moves(before, all_pins(root))


def upgrade(root: Path = ROOT, package: str | None = None) -> list[str]:
    """Move ``package`` (and what it needs), or every package, to the newest allowed release; return the moves."""
    if package is not None:
        known = {name for pins in all_pins(root).values() for name in pins}
        if canonical(package) not in known:
            raise DependencyError(
                f"{package!r} is pinned in no requirements/*.txt; `inv deps.add NAME --layer LAYER` adds a package."
            )
    before = all_pins(root)
    with restored_on_error(root):
        compile_all(root, [package] if package else True)
    return describe_moves(before, all_pins(root))


def direct_names(root: Path) -> dict[str, str]:
    """Return ``{canonical name: layer}`` for every direct dependency listed in the layers' inputs."""
    names = {}
    for layer in LAYERS:
        for line in (root / "requirements" / f"{layer}.in").read_text().splitlines():
            match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if match:
                names.setdefault(canonical(match.group(1)), layer)
    return names


def add(root: Path, requirement: str, layer: str) -> list[str]:
    """Add ``requirement`` (a name with an optional version or marker) to ``layer``'s input and compile every
    layer; return what moved. The files are left as they were when the package cannot be resolved."""
    if layer not in LAYERS:
        raise DependencyError(f"--layer is {layer!r}; valid layers: {', '.join(LAYERS)}.")
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        raise DependencyError(
            f"{requirement!r} is not a requirement: give a package name, optionally with a version "
            "and a marker, e.g. 'requests>=2.32' or 'tomli; python_version < \"3.11\"'."
        ) from None
    if parsed.url:
        raise DependencyError(f"{requirement!r} names a URL; the locked layers take packages from the index only.")
    present = direct_names(root).get(canonical(parsed.name))
    if present:
        raise DependencyError(f"{parsed.name} is already in requirements/{present}.in; edit that line instead.")
    before = all_pins(root)
    with restored_on_error(root):
        path = root / "requirements" / f"{layer}.in"
        text = path.read_text()
        path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + requirement.strip() + "\n")
        compile_all(root)
    return describe_moves(before, all_pins(root))


@contextmanager
def restored_on_error(root: Path) -> Iterator[None]:
    """Put the requirement files back as they were when the block raises, so a failed compile changes nothing."""
    folder = root / "requirements"
    saved = {path: path.read_bytes() for pattern in ("*.in", "*.txt") for path in folder.glob(pattern)}
    try:
        yield
    except BaseException:
        for path, content in saved.items():
            path.write_bytes(content)
        raise


def check(root: Path = ROOT) -> list[str]:
    """Compile every layer in a scratch copy of ``root``'s requirements; return a diff for each compiled file
    that differs from the committed one (an input changed without recompiling, or a file edited by hand)."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="deps-check-") as scratch:
        copy = Path(scratch)
        shutil.copytree(root / "requirements", copy / "requirements")
        for layer in LAYERS:  # keep the pins as preferences, but let the hashes come from the index again
            path = copy / "requirements" / f"{layer}.txt"
            path.write_text(
                "".join(f"{match.group(0)}\n" for match in map(PIN.match, path.read_text().splitlines()) if match)
            )
        compile_all(copy, offline=True)
        for layer in LAYERS:
            name = f"requirements/{layer}.txt"
            committed = (root / name).read_text().splitlines(keepends=True)
            compiled = (copy / name).read_text().splitlines(keepends=True)
            if committed != compiled:
                diff = difflib.unified_diff(committed, compiled, f"{name} (committed)", f"{name} (compiled)", n=1)
                problems.append("".join(diff))
    return problems


def main(argv: list[str]) -> int:
    if argv != ["check"]:
        print("usage: python -m devtools.dependencies check", file=sys.stderr)
        return 2
    try:
        problems = check()
    except DependencyError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    if problems:
        print("".join(problems), file=sys.stderr)
        print(
            "Error: the compiled requirements do not match their inputs (requirements/*.in); run `inv deps.lock` "
            "and commit the changed files.",
            file=sys.stderr,
        )
        return 1
    print("Every requirements/*.txt matches its input.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
