"""Flask config classes, one per ``FLASK_CONFIG`` name, and the translation of config entries into Flask settings.

The classes hold defaults only; every value that differs between deployments comes from the JSON config
through :func:`flask_settings`. Nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from project.configuration import BOOLEAN_SETTINGS, INTEGER_SETTINGS, ConfigError, as_bool

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class BaseConfig:
    """Defaults shared by every config."""

    DEBUG = False
    TESTING = False
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {
        # No ping on every checkout: project.extensions.watch_pool pings connections that sat idle, and safe
        # requests that still meet a dead connection run again on a new one (project.app.Application).
        "pool_pre_ping": False,
        # Hand out the most recently used connection, so under light load the same few stay warm and the
        # rest age past POOL_PING_AFTER_IDLE_SECONDS instead of every connection going a little stale.
        "pool_use_lifo": True,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
    }
    POSTGRES_CONNECT_TIMEOUT = 3
    POOL_PING_AFTER_IDLE_SECONDS = 1.0
    USERS_PER_PAGE_MAX = 100
    USERS_PER_PAGE_DEFAULT = 20
    MAX_CONTENT_LENGTH = 1024 * 1024
    PROXY_FIX_X_FOR = 0
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    HSTS = False
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"


class DevelopmentConfig(BaseConfig):
    """Local development: the debug server against the local cluster."""

    LOG_LEVEL = "DEBUG"


class TestingConfig(BaseConfig):
    """The test suite: exceptions propagate to the test client."""

    TESTING = True


class ProductionConfig(BaseConfig):
    """Production: never debug, secure cookies, HSTS."""

    SESSION_COOKIE_SECURE = True
    HSTS = True


CONFIG_CLASSES: dict[str, type[BaseConfig]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

_DATABASE_KEYS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
# Settings that only shape the connection (see connection_params); Flask's config does not need them.
_CONNECTION_KEYS = {"POSTGRES_MIGRATION_USER", "POSTGRES_MIGRATION_PASSWORD", "POSTGRES_PASSFILE", "DATABASE_ROLE"}
# Connection parameters the SQLAlchemy URL carries; the others go to the driver as connect_args.
_IN_URL = {"host", "port", "user", "password", "dbname"}
# Entries that configure processes around the app (the server, the tasks), not Flask itself.
_NOT_FOR_FLASK = {"FLASK_CONFIG", "FLASK_DEBUG", "APPLICATION_CONFIG"}


def config_class(name: str) -> type[BaseConfig]:
    """Return the config class called ``name``."""
    try:
        return CONFIG_CLASSES[name]
    except KeyError:
        valid = ", ".join(CONFIG_CLASSES)
        raise ConfigError(f"FLASK_CONFIG '{name}' is not a config class; valid names: {valid}.") from None


def connection_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Return libpq connection parameters from the POSTGRES_* settings.

    The one translation of settings into a connection: the app's engine, the tooling's admin connections
    and psql all start from it.
    """
    missing = [k for k in _DATABASE_KEYS if k not in values and k != "POSTGRES_PASSWORD"]
    if missing:
        raise ConfigError(f"The database is not configured: {', '.join(missing)} missing from the config.")
    user, password = values["POSTGRES_USER"], values.get("POSTGRES_PASSWORD")
    if values.get("DATABASE_ROLE") == "migration":
        # Migrations run as the role that owns the tables; the app's own role may only read and write rows.
        user, password = values.get("POSTGRES_MIGRATION_USER") or user, values.get("POSTGRES_MIGRATION_PASSWORD")
    params: dict[str, Any] = {
        "host": values["POSTGRES_HOST"],
        "port": int(values["POSTGRES_PORT"]),
        "user": user,
        "dbname": values["POSTGRES_DB"],
        "connect_timeout": int(values.get("POSTGRES_CONNECT_TIMEOUT") or BaseConfig.POSTGRES_CONNECT_TIMEOUT),
    }
    if password:
        params["password"] = password
    if values.get("POSTGRES_PASSFILE"):
        params["passfile"] = values["POSTGRES_PASSFILE"]
    if values.get("POSTGRES_SSLMODE"):
        params["sslmode"] = values["POSTGRES_SSLMODE"]
    return params


def libpq_environ(params: Mapping[str, Any]) -> dict[str, str]:
    """Return ``params`` as the PG* environment variables libpq programs (psql) read."""
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE", "password": "PGPASSWORD"}
    names |= {"sslmode": "PGSSLMODE", "connect_timeout": "PGCONNECT_TIMEOUT", "passfile": "PGPASSFILE"}
    return {names[k]: str(v) for k, v in params.items() if k in names}


def database_url(values: Mapping[str, Any]) -> URL:
    """Build the SQLAlchemy URL from the POSTGRES_* settings.

    A host that is a directory (libpq's way to name a Unix socket) goes in the query: in the URL's host part its
    slashes would end the host.
    """
    from sqlalchemy.engine import URL  # here, so the tooling's commands that only use psycopg2 skip its import

    params = connection_params(values)
    socket = str(params["host"]).startswith("/")
    return URL.create(
        "postgresql+psycopg2",
        username=params["user"],
        password=params.get("password"),
        host=None if socket else params["host"],
        port=params["port"],
        database=params["dbname"],
        query={"host": params["host"]} if socket else {},
    )


def flask_settings(base: type[BaseConfig], values: Mapping[str, Any]) -> dict[str, Any]:
    """Translate config entries (strings, as in the JSON files) into typed Flask settings."""
    settings: dict[str, Any] = {}
    for key, value in values.items():
        if key in _NOT_FOR_FLASK or key in _DATABASE_KEYS or key in _CONNECTION_KEYS:
            continue
        if isinstance(value, str) and key in INTEGER_SETTINGS:
            value = int(value)
        elif isinstance(value, str) and key in BOOLEAN_SETTINGS:
            value = as_bool(value)
        settings[key] = value
    driver_params: dict[str, Any] = {}
    if "SQLALCHEMY_DATABASE_URI" not in values and any(k in values for k in _DATABASE_KEYS):
        settings["SQLALCHEMY_DATABASE_URI"] = database_url(values).render_as_string(hide_password=False)
        driver_params = {k: v for k, v in connection_params(values).items() if k not in _IN_URL}
    options = dict(base.SQLALCHEMY_ENGINE_OPTIONS)
    options.update(values.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    connect_args = {**driver_params, **options.get("connect_args", {})}
    connect_args.setdefault("connect_timeout", settings.get("POSTGRES_CONNECT_TIMEOUT", base.POSTGRES_CONNECT_TIMEOUT))
    options["connect_args"] = connect_args
    settings["SQLALCHEMY_ENGINE_OPTIONS"] = options
    return settings
