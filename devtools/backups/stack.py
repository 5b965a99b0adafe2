"""Back up and restore the database of a compose stack's ``db`` service, from and to a file on the host.

Both run the image's own ``pg_dump`` and ``pg_restore`` inside the ``db`` container as the image's superuser
through the container's socket (the superuser is refused over TCP); the dump streams to the host through
``compose exec``. A restore goes only into a fresh volume (a database without tables), in one transaction, so a
bad file leaves the database as empty as it was. Standard library only: the smoke check runs these too.
"""

from __future__ import annotations

import datetime
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from devtools.backups.archive import read_header
from devtools.backups.files import written_atomically
from devtools.errors import ComposeError


def as_superuser(program: str, *args: str) -> tuple[str, ...]:
    """Return the ``compose`` arguments that run ``program`` in the db container as the image's superuser (the
    container's own POSTGRES_USER), through its socket."""
    return ("exec", "-T", "db", "sh", "-c", f'exec {program} --username "$POSTGRES_USER" "$@"', program, *args)


class StackDatabase:
    """The ``db`` service of one compose project: ``compose`` is the command line up to the subcommand."""

    def __init__(self, compose: Sequence[str], environ: Mapping[str, str], database: str, cwd: Path) -> None:
        self.compose, self.environ, self.database, self.cwd = list(compose), dict(environ), database, cwd

    def run(self, *args: str, **options) -> subprocess.CompletedProcess:
        return subprocess.run([*self.compose, *args], env=self.environ, cwd=self.cwd, **options)

    def psql(self, query: str) -> str:
        """Return the answer to ``query`` run by the superuser in the stack's database."""
        done = self.run(
            *as_superuser("psql", "--dbname", self.database, "-XAtc", query),
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise ComposeError(f"The stack's database did not answer: {last_line(done.stderr)}")
        return done.stdout.strip()

    def start(self, timeout: float = 120) -> None:
        """Start the ``db`` service alone and wait until its real server answers.

        The image's first start runs a temporary server on the socket alone (for the init scripts), which the
        health check already counts as ready; only the real server listens on TCP, so that is what is waited for.
        """
        done = self.run("up", "--detach", "--wait", "db", capture_output=True, text=True)
        if done.returncode != 0:
            raise ComposeError(f"The stack's db service did not start: {last_line(done.stderr)}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            probe = self.run("exec", "-T", "db", "pg_isready", "--host", "127.0.0.1", "--quiet", capture_output=True)
            if probe.returncode == 0:
                return
            time.sleep(1)
        raise ComposeError(f"The stack's db service did not accept TCP connections within {timeout:.0f} s.")


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def default_path(directory: Path, config_name: str, database: str, now: datetime.datetime | None = None) -> Path:
    """Return where a stack's backup goes by default: named after the database, the config and the UTC time."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return directory / f"{database}-{config_name}-stack-{stamp}.dump"


def backup(db: StackDatabase, output: Path) -> int:
    """Dump the stack's database to ``output`` on the host (whole or not at all); return its size in bytes."""
    if output.exists():
        raise ComposeError(f"{output} already exists; name another file with --output, or move it away.")
    output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    dump = as_superuser("pg_dump", "--format", "custom", "--dbname", db.database)
    with written_atomically(output) as partial, open(partial, "wb") as handle:
        done = db.run(*dump, stdout=handle, stderr=subprocess.PIPE, text=False)
        if done.returncode != 0:
            raise ComposeError(f"pg_dump in the db service failed: {last_line(done.stderr.decode(errors='replace'))}")
        handle.flush()
    read_header(output)  # what arrived is a whole dump's header, not an error message
    return output.stat().st_size


def restore(db: StackDatabase, path: Path, owner: str) -> None:
    """Restore dump ``path`` into the stack's database, which must be fresh (no tables): as ``owner``'s objects,
    in one transaction. Starts the ``db`` service if needed; the caller starts the rest."""
    header = read_header(path)
    db.start()
    major = int(db.psql("SELECT current_setting('server_version_num')::int / 10000"))
    if header.server_major > major:
        raise ComposeError(
            f"{path} was dumped from PostgreSQL {header.server_major}, newer than the stack's {major}: PostgreSQL "
            f"cannot move data to an older major; restore it on a PostgreSQL {header.server_major} stack or newer."
        )
    tables = int(db.psql("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"))
    if tables:
        raise ComposeError(
            f"The stack's database '{db.database}' already holds {tables} table(s): a restore goes only into a fresh "
            "volume; back it up, then `inv compose.down --volumes` (which deletes its data) and restore again."
        )
    options = ("--dbname", db.database, "--no-owner", f"--role={owner}", "--exit-on-error", "--single-transaction")
    with open(path, "rb") as handle:
        done = db.run(*as_superuser("pg_restore", *options), stdin=handle, capture_output=True)
    if done.returncode != 0:
        detail = last_line(done.stderr.decode(errors="replace"))
        raise ComposeError(f"{path} could not be restored (it may be truncated or damaged); nothing was kept: {detail}")
