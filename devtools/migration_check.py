"""Prove the migrations on a throwaway server: one head, upgrade, models match, downgrade to base, upgrade again.

Run by ``nox -s migrations`` as ``python -m devtools.migration_check``; exits 1 on the first failing step.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from devtools import migrations as ops
from devtools.databases import admin_cursor, create_database, owner_mark
from devtools.identity import prefix
from devtools.postgres.throwaway import throwaway_cluster
from devtools.target import throwaway_config
from project.errors import UserError

DATABASE = "migration_check"


def steps(config, migrations: ops.Migrations) -> list[tuple[str, Callable[[], str | None]]]:
    """Return the named steps, taken with ``migrations`` (one app for all of them); each returns None when it
    passes, else what went wrong."""

    def single_head():
        heads = ops.head_revision(config.get("MIGRATIONS_DIR"))
        # None before the first migration (a project without models yet); two or more are branches to merge.
        return None if "," not in (heads or "") else f"expected at most one head, found {heads}"

    def upgrade():
        migrations.upgrade()

    def check():
        diff = migrations.check_models()
        return f"the models differ from the migrations: {diff}" if diff else None

    def downgrade():
        migrations.downgrade("base")
        return None if migrations.current_revision() is None else "the database is not empty after downgrade"

    return [
        ("one head", single_head),
        ("upgrade to head", upgrade),
        ("models match migrations", check),
        ("downgrade to base", downgrade),
        ("upgrade to head again", upgrade),
    ]


def run(migrations_dir: Path | None = None, out=print) -> bool:
    """Run every step on a fresh throwaway server; return whether all passed."""
    with throwaway_cluster(prefix=prefix("migrations-pg")) as cluster:
        config = throwaway_config(cluster, DATABASE)
        if migrations_dir:
            config = config.replace(MIGRATIONS_DIR=str(migrations_dir))
        with admin_cursor(config) as cur:
            create_database(cur, DATABASE, mark=owner_mark(config.name))
        with ops.opened(config) as migrations:
            for name, step in steps(config, migrations):
                try:
                    problem = step()
                except UserError as exc:
                    problem = str(exc)
                out(f"{'ok  ' if problem is None else 'FAIL'} {name}" + (f": {problem}" if problem else ""))
                if problem is not None:
                    return False
    return True


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
