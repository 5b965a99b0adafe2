"""Server-level database administration (connect, create, drop, inspect), shared by tasks, scenarios and tests.

Databases are created and dropped only through here, and a drop needs the database's ownership mark: the
comment this module writes when it creates one. A database the project did not create is never dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import psycopg2
from psycopg2 import sql

from devtools.errors import DatabaseError
from project.errors import first_line
from project.settings import connection_params

MARK = "managed by the project"
PROTECTED_CONFIGS = ("production",)
STAGING_PREFIX = "project_creating_"  # a database being created, not yet marked and renamed into place
MAX_NAME_BYTES = 63  # PostgreSQL truncates longer identifiers, so two long names could become one


def owner_mark(config_name: str, scenario: str | None = None) -> str:
    """Return the ownership mark for a database created under config ``config_name`` (for ``scenario``)."""
    return f"{MARK}; config {config_name}" + (f"; scenario {scenario}" if scenario else "")


def check_name(name: str) -> str:
    """Return ``name``, or raise a DatabaseError when PostgreSQL would truncate it."""
    size = len(name.encode())
    if size > MAX_NAME_BYTES:
        raise DatabaseError(
            f"The database name '{name}' is {size} bytes long; PostgreSQL keeps only {MAX_NAME_BYTES}, so it could "
            "collide with another name: shorten POSTGRES_DB or the scenario's name."
        )
    return name


def connect(values: Mapping[str, Any], dbname: str | None = None, **kwargs):
    """Open a psycopg2 connection to the configured server (to ``dbname``, default the configured database)."""
    params = connection_params(values)
    if dbname:
        params["dbname"] = dbname
    return psycopg2.connect(**params, **kwargs)


@contextlib.contextmanager
def admin_cursor(values: Mapping[str, Any], dbname: str = "postgres") -> Iterator[Any]:
    """Yield an autocommit cursor on the server's maintenance database."""
    try:
        conn = connect(values, dbname=dbname)
    except psycopg2.OperationalError as exc:
        raise DatabaseError(
            f"Cannot connect to PostgreSQL at {values['POSTGRES_HOST']}:{values['POSTGRES_PORT']} "
            f"as {values['POSTGRES_USER']}: {first_line(exc)}"
        ) from None
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def database_exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    return cur.fetchone() is not None


def database_mark(cur, name: str) -> str | None:
    """Return the ownership mark of database ``name`` (its comment), or None."""
    cur.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    )
    row = cur.fetchone()
    return row[0] if row else None


def staging_name(name: str) -> str:
    """Return the name database ``name`` is created under before it is marked and renamed into place."""
    return f"{STAGING_PREFIX}{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def drop_leftover(cur, name: str, mark: str) -> bool:
    """Drop what a creation of ``name`` killed half-way left under its staging name, when it is recognisably that:
    unmarked, or carrying ``mark``; return whether there was one."""
    staging = staging_name(name)
    if not database_exists(cur, staging) or database_mark(cur, staging) not in (None, mark):
        return False
    cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(staging)))
    return True


def create_database(cur, name: str, *, mark: str, template: str | None = None, owner: str | None = None):
    """Create database ``name`` (from ``template`` if given) with its ownership mark, in one step as seen from outside.

    It is created under :func:`staging_name`, marked, then renamed to ``name``: a process killed half-way (SIGKILL,
    OOM) leaves no unmarked database under ``name``, only a leftover under the staging name, which the next creation
    of ``name`` drops when it is recognisably one (unmarked, or carrying ``mark``). Creations of one name take turns.
    """
    staging = staging_name(check_name(name))
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(staging))
    if template:
        # PostgreSQL 15+ copies through the WAL (its default strategy): on a durable cluster about three times
        # faster than FILE_COPY, which forces two checkpoints (see `nox -s bench`, P6).
        query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
    if owner:
        query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
    key = f"project create {name}"
    cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
    try:
        drop_leftover(cur, name, mark)
        cur.execute(query)
        try:
            cur.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(staging), sql.Literal(mark)))
            cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(staging), sql.Identifier(name)))
        except psycopg2.Error:  # ``name`` exists, say: leave nothing behind
            with contextlib.suppress(psycopg2.Error):
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(staging)))
            raise
    finally:
        with contextlib.suppress(psycopg2.Error):  # a connection that is gone released it already
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def drop_database(cur, name: str, *, mark: str) -> bool:
    """Drop database ``name`` if it carries ``mark``; refuse one that does not. Return whether it existed.

    A database marked as created under a protected config (production) is never dropped, whatever ``mark`` says.
    The drop is one statement that also ends the database's sessions, so a failure leaves it as it was.
    """
    if not database_exists(cur, name):
        return False
    found = database_mark(cur, name)
    for config in PROTECTED_CONFIGS:
        if found and f"; config {config}" in found:
            raise DatabaseError(
                f"Refusing to drop database '{name}': it was created under the '{config}' config and holds its data."
            )
    if found != mark:
        raise DatabaseError(
            f"Refusing to drop database '{name}': it was not created by this project under this config "
            f"(its comment is {found!r}, expected {mark!r})."
        )
    try:
        cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    except psycopg2.Error as exc:
        raise DatabaseError(f"Could not drop database '{name}': {first_line(exc)}") from None
    return True


def terminate_connections(cur, name: str) -> None:
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )


def ensure_role(cur, role: str, password: str | None = None) -> bool:
    """Create login role ``role`` unless it exists (never a superuser, nor allowed to create databases or roles),
    and set its password when one is given; return whether it was created."""
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    created = cur.fetchone() is None
    if created:
        cur.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION").format(
                sql.Identifier(role)
            )
        )
    if password:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    return created


def grant_rows_only(cur, database: str, owner: str, app: str) -> None:
    """Let ``app`` connect to ``database`` and read and write the rows of the tables ``owner`` creates, nothing
    more: no CREATE on the database or its schema, no temporary tables, no DDL on the tables."""
    names = {"db": sql.Identifier(database), "owner": sql.Identifier(owner), "app": sql.Identifier(app)}
    for statement in (
        "REVOKE ALL ON DATABASE {db} FROM PUBLIC",
        "GRANT CONNECT ON DATABASE {db} TO {app}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT USAGE ON SCHEMA public TO {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}",
    ):
        cur.execute(sql.SQL(statement).format(**names))


def table_counts(values: Mapping[str, Any], dbname: str) -> dict[str, int]:
    """Return the exact row count of every table in the public schema of ``dbname``."""
    with contextlib.closing(connect(values, dbname=dbname)) as conn, conn.cursor() as cur:
        return row_counts(cur)


def row_counts(cur) -> dict[str, int]:
    """Return the exact row count of every table in the public schema of the database ``cur`` is connected to."""
    cur.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' "
        "ORDER BY tablename"
    )
    counts = {}
    for (table,) in cur.fetchall():
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = cur.fetchone()[0]
    return counts
