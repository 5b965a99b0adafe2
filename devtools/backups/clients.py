"""What dumping and restoring share: who connects, which server major answers, and running pg_dump or pg_restore
of a matching major with only the environment libpq needs."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devtools.databases import admin_cursor
from devtools.errors import DatabaseError
from devtools.postgres.binaries import client_bindir
from devtools.postgres.safety import server_environ
from devtools.target import Target
from project.settings import connection_params, libpq_environ


def owner_values(target: Target) -> dict[str, Any]:
    """Return the settings that can read and create every object of the target's database: the local cluster's
    superuser, or on another server the config's migration role (the owner of the tables)."""
    values = target.admin()
    if target.cluster is None:
        values["DATABASE_ROLE"] = "migration"
    return values


def server_major(values: Mapping[str, Any]) -> int:
    """Return the major version of the server ``values`` point at (a DatabaseError when it cannot be reached)."""
    with admin_cursor(values) as cur:
        cur.execute("SELECT current_setting('server_version_num')::int / 10000")
        return cur.fetchone()[0]


# The caller's own libpq settings a client may need (a password file, TLS roots); nothing else of its environment.
CLIENT_ENVIRON = ("HOME", "PGPASSFILE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSERVICEFILE")


def client_environ(values: Mapping[str, Any], database: str) -> dict[str, str]:
    """Return the environment of a libpq client program: the allow-listed basics, the caller's libpq files and
    the connection settings, none of the caller's other variables (secrets included)."""
    params = connection_params({**values, "POSTGRES_DB": database})
    own = {k: os.environ[k] for k in CLIENT_ENVIRON if k in os.environ}
    return {**server_environ(), **own, **libpq_environ(params)}


def run_client(
    program: str,
    args: list[str],
    environ: Mapping[str, str],
    at_least: int,
    prefer: int,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``program`` (of major ``prefer``, else the oldest not older than ``at_least``) with ``args``; its
    stderr lines go to ``on_line`` as they come; a failure is a DatabaseError naming its last error line."""
    bindir: Path = client_bindir(program, at_least=at_least, prefer=prefer)
    errors: list[str] = []
    with subprocess.Popen(
        [str(bindir / program), *args], env=dict(environ), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    ) as process:  # fmt: skip
        try:
            for line in process.stderr:
                if on_line is not None:
                    on_line(line)
                if ": error: " in line or "FATAL" in line or "ERROR" in line:
                    errors.append(line.strip())
        except BaseException:  # an interrupt: the program goes too, before the caller deletes its output
            process.terminate()
            raise
    code = process.returncode
    if code != 0:
        detail = errors[0] if errors else f"exit code {code}"
        raise DatabaseError(f"{program} failed: {detail}")
