"""Dump a target's database to a file: consistent (pg_dump's one snapshot), in the custom format, written under a
hidden temporary name and linked to its final name only once complete, readable by its owner alone."""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.backups import files
from devtools.backups.clients import client_environ, owner_values, run_client, server_major
from devtools.backups.files import written_atomically
from devtools.databases import admin_cursor, connect, database_exists
from devtools.errors import DatabaseError
from devtools.target import Target


@dataclass
class DumpReport:
    path: Path
    database: str
    revision: str | None
    size: int

    def __str__(self) -> str:
        revision = f"revision {self.revision}" if self.revision else "no migration revision"
        return f"Dumped database '{self.database}' ({revision}) to {self.path} ({self.size:,} bytes)."


def default_path(target: Target, revision: str | None, now: datetime.datetime | None = None) -> Path:
    """Return where a dump goes by default: named after the database, the config, the revision and the UTC time."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    revision = (revision or "none").replace(",", "+")
    return files.BACKUP_DIR / f"{target.database}-{target.config.name}-{revision}-{stamp}.dump"


def describe_database(values: dict, database: str) -> tuple[str | None, int]:
    """Return the migration revision of ``database`` (None without one) and how many tables it has."""
    with contextlib.closing(connect(values, dbname=database)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
        tables = cur.fetchone()[0]
        cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None, tables
        cur.execute("SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version")
        return cur.fetchone()[0], tables


def dump(target: Target, output: Path | None = None, progress: Callable | None = None) -> DumpReport:
    """Dump the target's database to ``output`` (default: :func:`default_path`); ``progress`` is a tqdm-like
    factory for a bar counting the tables dumped."""
    values, database = owner_values(target), target.database
    where = f"{target.config['POSTGRES_HOST']}:{target.config['POSTGRES_PORT']}"
    with admin_cursor(values) as cur:
        if not database_exists(cur, database):
            raise DatabaseError(
                f"Database '{database}' does not exist on {where} (config '{target.config.name}'): nothing to dump; "
                "check POSTGRES_DB, or create it with `inv db.init`."
            )
    major = server_major(values)
    revision, tables = describe_database(values, database)
    output = Path(output) if output else default_path(target, revision)
    if os.path.lexists(output):
        raise DatabaseError(f"{output} already exists; name another file with --output, or move it away.")
    output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    bar = progress(total=tables, desc=f"Dumping {database}", unit="table") if progress else None

    def on_line(line: str) -> None:
        if bar is not None and "dumping contents of table" in line:
            bar.update(1)

    args = ["--format=custom", "--no-password", "--dbname", database] + (["--verbose"] if bar else [])
    try:
        with written_atomically(output) as partial:
            run_client(
                "pg_dump", [*args, "--file", str(partial)], client_environ(values, database), major, major, on_line
            )
    finally:
        if bar is not None:
            bar.close()
    return DumpReport(output, database, revision, output.stat().st_size)
