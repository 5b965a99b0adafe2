"""Migration revisions: the head the code expects and the revision a database is at.

One home for both, used by ``/readyz`` and by the development tooling.
"""

from __future__ import annotations

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def code_head(directory: str | Path | None = None) -> str | None:
    """Return the code's migration head(s), comma-separated, or None when there is no revision."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(directory or MIGRATIONS_DIR)).get_heads()
    return ",".join(sorted(heads)) or None


def newer_than_code(revision: str | None, directory: str | Path | None = None) -> bool:
    """Tell whether the database's ``revision`` is one the code does not know: a newer release migrated it."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if not revision:
        return False
    script = ScriptDirectory(str(directory or MIGRATIONS_DIR))
    for rev in revision.split(","):
        try:
            if script.get_revision(rev) is not None:
                return False
        except CommandError:
            continue
    return True


def database_revision(connection) -> str | None:
    """Return the revision the database behind ``connection`` is at, or None before any migration."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(sorted(heads)) or None
