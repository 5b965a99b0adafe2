"""Flask config classes, one per ``FLASK_CONFIG`` name, and the translation of config entries into Flask settings.

The classes hold defaults only; every value that differs between deployments comes from the JSON config
through :func:`flask_settings`. Nothing here reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import URL

from project.configuration import BOOLEAN_SETTINGS, INTEGER_SETTINGS, ConfigError, as_bool


class BaseConfig:
    """Defaults shared by every config."""

    DEBUG = False
    TESTING = False
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {
        # Reconnect after a database restart instead of failing the first request on a dead connection.
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": 5,
    }
    POSTGRES_CONNECT_TIMEOUT = 3
    USERS_PER_PAGE_MAX = 100
    USERS_PER_PAGE_DEFAULT = 20
    MAX_CONTENT_LENGTH = 1024 * 1024
    PROXY_FIX_X_FOR = 0
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    HSTS = False
    LOG_LEVEL = "INFO"


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
# Entries that configure processes around the app (the server, the tasks), not Flask itself.
_NOT_FOR_FLASK = {"FLASK_CONFIG", "FLASK_DEBUG", "APPLICATION_CONFIG"}


def config_class(name: str) -> type[BaseConfig]:
    """Return the config class called ``name``."""
    try:
        return CONFIG_CLASSES[name]
    except KeyError:
        valid = ", ".join(CONFIG_CLASSES)
        raise ConfigError(f"FLASK_CONFIG '{name}' is not a config class; valid names: {valid}.") from None


def database_url(values: Mapping[str, Any]) -> URL:
    """Build the SQLAlchemy URL from the POSTGRES_* settings."""
    missing = [k for k in _DATABASE_KEYS if k not in values and k != "POSTGRES_PASSWORD"]
    if missing:
        raise ConfigError(f"The database is not configured: {', '.join(missing)} missing from the config.")
    return URL.create(
        "postgresql+psycopg2",
        username=values["POSTGRES_USER"],
        password=values.get("POSTGRES_PASSWORD") or None,
        host=values["POSTGRES_HOST"],
        port=int(values["POSTGRES_PORT"]),
        database=values["POSTGRES_DB"],
    )


def flask_settings(base: type[BaseConfig], values: Mapping[str, Any]) -> dict[str, Any]:
    """Translate config entries (strings, as in the JSON files) into typed Flask settings."""
    settings: dict[str, Any] = {}
    for key, value in values.items():
        if key in _NOT_FOR_FLASK or key in _DATABASE_KEYS:
            continue
        if isinstance(value, str) and key in INTEGER_SETTINGS:
            value = int(value)
        elif isinstance(value, str) and key in BOOLEAN_SETTINGS:
            value = as_bool(value)
        settings[key] = value
    if "SQLALCHEMY_DATABASE_URI" not in values and any(k in values for k in _DATABASE_KEYS):
        settings["SQLALCHEMY_DATABASE_URI"] = database_url(values).render_as_string(hide_password=False)
    options = dict(base.SQLALCHEMY_ENGINE_OPTIONS)
    options.update(values.get("SQLALCHEMY_ENGINE_OPTIONS", {}))
    connect_args = dict(options.get("connect_args", {}))
    connect_args.setdefault("connect_timeout", settings.get("POSTGRES_CONNECT_TIMEOUT", base.POSTGRES_CONNECT_TIMEOUT))
    if values.get("POSTGRES_SSLMODE"):
        connect_args.setdefault("sslmode", values["POSTGRES_SSLMODE"])
    options["connect_args"] = connect_args
    settings["SQLALCHEMY_ENGINE_OPTIONS"] = options
    return settings
