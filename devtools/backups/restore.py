"""Restore a dump into a new database: checked before anything is created, restored under a temporary name and
renamed only once complete (a failure drops it), marked as the project's, its migration revision compared with
the code's."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from psycopg2 import sql

from devtools.backups.archive import ArchiveHeader, NotADump, read_header
from devtools.backups.clients import client_environ, owner_values, run_client, server_major
from devtools.backups.dump import describe_database
from devtools.databases import (
    MAX_NAME_BYTES,
    admin_cursor,
    check_name,
    database_exists,
    drop_database,
    owner_mark,
)
from devtools.errors import DatabaseError
from devtools.lifecycle import create_database_if_missing
from devtools.target import PROTECTED_CONFIGS, Target
from project.revisions import code_head, newer_than_code


@dataclass
class RestoreReport:
    database: str
    config: str
    revision: str | None
    head: str | None
    replaced: bool
    default_database: bool = True

    def __str__(self) -> str:
        done = f"Restored into database '{self.database}'" + (" (replacing the old one)" if self.replaced else "")
        if self.revision == self.head:
            return f"{done}; it is at revision {self.revision or 'none'}, the code's head."
        if newer_than_code(self.revision):
            return (
                f"{done}; it is at revision {self.revision}, which this code does not know (a newer release "
                "migrated it): run a checkout of that release against it."
            )
        select = "" if self.default_database else f"POSTGRES_DB={self.database} "
        return (
            f"{done}; it is at revision {self.revision or 'none'} and the code's head is {self.head}: run "
            f"`{select}inv db.upgrade --config {self.config}`."
        )


def check_archive(path: Path, major: int) -> ArchiveHeader:
    """Return the header of dump ``path``, or raise a sentence when a server of ``major`` cannot take it."""
    header = read_header(path)
    if header.server_major > major:
        raise DatabaseError(
            f"{path} was dumped from PostgreSQL {header.server_major}, newer than this server's {major}: PostgreSQL "
            f"cannot move data to an older major; restore it on a PostgreSQL {header.server_major} server or newer."
        )
    return header


def staging_name(name: str) -> str:
    """Return a fresh name to restore ``name`` under until the restore is complete."""
    suffix = f"_restoring_{secrets.token_hex(4)}"
    return name[: MAX_NAME_BYTES - len(suffix)] + suffix


def restore(path: Path, target: Target, database: str | None = None, replace: bool = False) -> RestoreReport:
    """Restore dump ``path`` into ``database`` (default: the target's) on the target's server."""
    name = check_name(database or target.database)
    config = target.config
    if replace and config.name in PROTECTED_CONFIGS:
        refuse_replacing(name, config.name, replace)
    values = owner_values(target)
    major = server_major(values)
    header = check_archive(Path(path), major)
    mark = owner_mark(config.name)
    with admin_cursor(values) as cur:
        if database_exists(cur, name):
            refuse_replacing(name, config.name, replace)
    staging = staging_name(name)
    owner = config.get("POSTGRES_MIGRATION_USER") or config["POSTGRES_USER"]
    owner = owner if owner != target.admin()["POSTGRES_USER"] else None
    create_database_if_missing(target, staging)  # with the config's roles, owner and grants, as `inv db.init`
    try:
        args = ["--no-password", "--exit-on-error", "--no-owner", "--no-privileges", "--dbname", staging]
        args += [f"--role={owner}"] if owner else []
        try:
            run_client("pg_restore", [*args, str(path)], client_environ(values, staging), header.dump_major, major)
        except DatabaseError as exc:
            raise DatabaseError(f"{path} could not be restored (it may be truncated or damaged); {exc}") from None
        with admin_cursor(values) as cur:
            if replace and database_exists(cur, name):
                drop_database(cur, name, mark=mark)
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(name)))
    except BaseException:
        with admin_cursor(values) as cur:
            drop_database(cur, staging, mark=mark)
        raise
    revision, _ = describe_database(values, name)
    head = code_head(config.get("MIGRATIONS_DIR"))
    return RestoreReport(name, config.name, revision, head, replace, name == target.database)


def refuse_replacing(name: str, config: str, replace: bool) -> None:
    """Refuse to restore over database ``name``: always without ``replace``, and under a protected config."""
    if config in PROTECTED_CONFIGS:
        raise DatabaseError(
            f"Database '{name}' exists and the '{config}' config holds production data: a restore never replaces "
            "it; restore into a new database with --database NAME."
        )
    if not replace:
        raise DatabaseError(
            f"Database '{name}' already exists: restore into a new one with --database NAME, or pass --replace "
            "to replace it (only a database this project created under this config)."
        )


__all__ = ["NotADump", "RestoreReport", "check_archive", "restore"]
