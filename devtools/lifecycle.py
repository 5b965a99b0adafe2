"""Create, migrate and reset a target's database."""

from __future__ import annotations

from dataclasses import dataclass

from devtools import migrations
from devtools.databases import admin_cursor, create_database, database_exists, drop_database, ensure_role
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
    """Create the target's database (and, on the local cluster, its role); return whether it was created."""
    name = name or target.database
    admin = target.admin()
    owner = target.config["POSTGRES_USER"] if target.config["POSTGRES_USER"] != admin["POSTGRES_USER"] else None
    with admin_cursor(admin) as cur:
        if owner:
            ensure_role(cur, owner)
        if database_exists(cur, name):
            return False
        create_database(cur, name, owner=owner)
        return True


def init_database(target: Target) -> InitReport:
    """Create the target's database if missing and migrate it to head. Idempotent."""
    created = create_database_if_missing(target)
    before = None if created else migrations.current_revision(target.config)
    head = migrations.head_revision()
    if before != head:
        migrations.upgrade(target.config)
    return InitReport(target.database, created, before, head)


def reset_database(target: Target) -> InitReport:
    """Drop the target's database (only one this project created) and initialise it again."""
    refuse_production(target.config)
    with admin_cursor(target.admin()) as cur:
        drop_database(cur, target.database)
    return init_database(target)
