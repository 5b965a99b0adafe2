"""Create, migrate and reset a target's database."""

from __future__ import annotations

from dataclasses import dataclass

from devtools import migrations
from devtools.databases import (
    admin_cursor,
    create_database,
    database_exists,
    drop_database,
    ensure_role,
    grant_rows_only,
    owner_mark,
)
from devtools.target import Target, refuse_production


@dataclass
class InitReport:
    database: str
    created: bool
    before: str | None
    after: str | None

    def __str__(self) -> str:
        where = f"Database '{self.database}'"
        if self.created:
            return f"{where} created and migrated to revision {self.after}."
        if self.before == self.after:
            return f"{where} is already up to date (revision {self.after}); nothing changed."
        return f"{where} migrated from revision {self.before or 'none'} to {self.after}."


def create_database_if_missing(target: Target, name: str | None = None) -> bool:
    """Create the target's database if missing; return whether it was created.

    Where the config names roles other than the administrator (production's ``app_owner`` and ``app`` under
    ``inv prod``), they are created with the config's passwords: the migration role owns the database, the app
    role may only read and write rows.
    """
    name = name or target.database
    admin, config = target.admin(), target.config
    owner = config.get("POSTGRES_MIGRATION_USER") or config["POSTGRES_USER"]
    owner = owner if owner != admin["POSTGRES_USER"] else None
    app = config["POSTGRES_USER"] if config["POSTGRES_USER"] not in (admin["POSTGRES_USER"], owner) else None
    with admin_cursor(admin) as cur:
        if owner:
            ensure_role(cur, owner, config.get("POSTGRES_MIGRATION_PASSWORD"))
        if app:
            ensure_role(cur, app, config.get("POSTGRES_PASSWORD"))
        created = not database_exists(cur, name)
        if created:
            create_database(cur, name, mark=owner_mark(config.name), owner=owner)
    if app:
        with admin_cursor(admin, dbname=name) as cur:
            grant_rows_only(cur, name, owner or admin["POSTGRES_USER"], app)
    return created


def init_database(target: Target) -> InitReport:
    """Create the target's database if missing and migrate it to head. Idempotent."""
    created = create_database_if_missing(target)
    head = migrations.head_revision(target.config.get("MIGRATIONS_DIR"))
    with migrations.opened(target.config) as steps:
        before = None if created else steps.current_revision()
        if before != head:
            steps.upgrade()
    return InitReport(target.database, created, before, head)


def init_if_missing(target: Target) -> InitReport | None:
    """Create and migrate the target's database when it does not exist (``db.migrate`` compares the models with
    a database at the migrations' head); return what was done, or None when it existed."""
    with admin_cursor(target.admin()) as cur:
        if database_exists(cur, target.database):
            return None
    return init_database(target)


def reset_database(target: Target) -> InitReport:
    """Drop the target's database (only one this project created) and initialise it again."""
    refuse_production(target.config)
    with admin_cursor(target.admin()) as cur:
        drop_database(cur, target.database, mark=owner_mark(target.config.name))
    return init_database(target)
