"""What the database tasks do, as plain functions: start the local server, create and migrate databases.

``tasks.py`` only parses arguments and prints; the work, and its tests, live here.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from project.configuration import Config, ConfigError, load_config
from project.database import admin_cursor, create_database, database_exists, drop_database, ensure_role
from project.local_postgres import LocalCluster, development_cluster

PROTECTED_CONFIGS = ("production",)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_cluster() -> LocalCluster:
    """Return the project's local cluster, at the address config/development.json gives.

    The file alone decides it: a POSTGRES_PORT in the shell points the app at another server, it does not
    move the cluster (so tests that point the tasks at their own server never touch it).
    """
    dev = load_config("development", environ={}, require_secrets=False)
    return development_cluster(dev["POSTGRES_HOST"], int(dev["POSTGRES_PORT"]), dev["POSTGRES_USER"])


def uses_local_cluster(config: Config) -> bool:
    """Tell whether ``config`` points at the local cluster (a loopback host on the cluster's port)."""
    cluster = local_cluster()
    return is_loopback(config["POSTGRES_HOST"]) and int(config["POSTGRES_PORT"]) == cluster.port


def testing_config_for(host: str, port: int, user: str, dbname: str) -> Config:
    """Return config/testing.json, read without the shell's environment, pointed at ``dbname`` on a server."""
    return load_config("testing", environ={}).replace(
        POSTGRES_HOST=host, POSTGRES_PORT=str(port), POSTGRES_USER=user, POSTGRES_PASSWORD="", POSTGRES_DB=dbname
    )


def require_server_address(config: Config) -> None:
    """Refuse a config whose database lives on a server chosen per run (port 0, as in testing)."""
    if int(config["POSTGRES_PORT"]) == 0:
        raise ConfigError(
            f"{config.display_path()}: POSTGRES_PORT is 0, meaning a throwaway server per test run; "
            "database tasks need a config with a real server (development, production, ...)."
        )


def ensure_server(config: Config) -> str | None:
    """Start the local cluster when ``config`` points at it; return a sentence when something was done."""
    require_server_address(config)
    if not uses_local_cluster(config):
        return None
    cluster = local_cluster()
    created = cluster.init()
    if cluster.start():
        what = "Created and started" if created else "Started"
        return f"{what} the local PostgreSQL cluster on {cluster.host}:{cluster.port} ({cluster.base_dir})."
    return None


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


def make_app(config: Config, **overrides: Any):
    """Create the app for ``config``."""
    from project import create_app

    return create_app(config["FLASK_CONFIG"], overrides={**config, **overrides})


@contextlib.contextmanager
def app_context(config: Config, **overrides: Any) -> Iterator[Any]:
    """Yield the app for ``config`` inside an app context, disposing its engine afterwards."""
    from project.extensions import db

    app = make_app(config, **overrides)
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()
            db.engine.dispose()


def admin_values(config: Config) -> dict[str, str]:
    """Return the settings to connect as for creating and dropping databases.

    On the local cluster that is its superuser (the config's user may not exist yet, as with production's
    `app` role under `inv prod`); on any other server, the config's own user.
    """
    values = dict(config)
    if uses_local_cluster(config):
        values["POSTGRES_USER"] = local_cluster().superuser
    return values


def create_database_if_missing(config: Config, name: str | None = None) -> bool:
    """Create the configured database (and, on the local cluster, its role); return whether it was created."""
    name = name or config["POSTGRES_DB"]
    admin = admin_values(config)
    owner = config["POSTGRES_USER"] if config["POSTGRES_USER"] != admin["POSTGRES_USER"] else None
    with admin_cursor(admin) as cur:
        if owner:
            ensure_role(cur, owner)
        if database_exists(cur, name):
            return False
        create_database(cur, name, owner=owner)
        return True


def current_revision(config: Config) -> str | None:
    """Return the migration revision the configured database is at."""
    from project.api.health import database_revision

    with app_context(config):
        return database_revision()


def head_revision(directory: str | None = None) -> str | None:
    """Return the code's migration head(s), comma-separated."""
    from alembic.script import ScriptDirectory

    from project.app import migrations_dir

    return ",".join(sorted(ScriptDirectory(str(directory or migrations_dir())).get_heads())) or None


def init_database(config: Config) -> InitReport:
    """Create the configured database if missing and migrate it to head. Idempotent."""
    ensure_server(config)
    created = create_database_if_missing(config)
    before = None if created else current_revision(config)
    if created or before != head_revision():
        upgrade(config)
    return InitReport(config["POSTGRES_DB"], created, before, current_revision(config))


def _alembic(config: Config, command: str, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
    """Run alembic ``command`` on the app's migrations; alembic's own errors become a ConfigError."""
    from alembic import command as commands
    from alembic.util import AutogenerateDiffsDetected, CommandError
    from flask import current_app

    overrides = {"POSTGRES_DB": name} if name else {}
    with app_context(config, **overrides):
        alembic_config = current_app.extensions["migrate"].migrate.get_config()
        try:
            return getattr(commands, command)(alembic_config, *args, **kwargs)
        except AutogenerateDiffsDetected:
            raise
        except CommandError as exc:
            raise ConfigError(f"Migration command '{command}' failed: {exc}.") from None


def upgrade(config: Config, revision: str = "head", name: str | None = None) -> None:
    """Apply migrations up to ``revision``."""
    _alembic(config, "upgrade", revision, name=name)


def downgrade(config: Config, revision: str = "-1") -> None:
    """Revert migrations down to ``revision``."""
    _alembic(config, "downgrade", revision)


def autogenerate(config: Config, message: str) -> str | None:
    """Write a new migration from the difference between the models and the database; return its path."""

    def skip_empty(context, revision, directives):
        if directives[0].upgrade_ops.is_empty():
            directives[:] = []

    script = _alembic(config, "revision", message=message, autogenerate=True, process_revision_directives=skip_empty)
    return getattr(script, "path", None) if script else None


def check_models(config: Config) -> str | None:
    """Return None when the models match the migrations applied to the database, else what differs."""
    from alembic.util import AutogenerateDiffsDetected

    try:
        _alembic(config, "check")
    except AutogenerateDiffsDetected as exc:
        return str(exc)
    return None


def refuse_production(config: Config) -> None:
    """Raise ConfigError for a config whose database holds production data."""
    if config.name in PROTECTED_CONFIGS or config["FLASK_CONFIG"] == "production":
        raise ConfigError(f"Refusing to reset the database of the '{config.name}' config: it is production data.")


def reset_database(config: Config) -> InitReport:
    """Drop the configured database (only one this project created) and initialise it again."""
    refuse_production(config)
    ensure_server(config)
    with admin_cursor(admin_values(config)) as cur:
        drop_database(cur, config["POSTGRES_DB"])
    return init_database(config)
