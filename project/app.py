"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from project.extensions import db, end_autocommit, migrate
from project.revisions import MIGRATIONS_DIR
from project.settings import config_class, flask_settings


def create_app(config_name: str = "development", overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create the app from the config class ``config_name`` and the settings in ``overrides``.

    ``overrides`` is usually a loaded config (string values, as in ``config/<name>.json``); tests may
    also pass typed Flask settings such as ``SQLALCHEMY_DATABASE_URI``.
    """
    base = config_class(config_name)
    if config_name == "production":
        refuse_unsafe_production(overrides or {})
    app = Flask(__name__)
    app.config.from_object(base)
    app.config["CONFIG_NAME"] = config_name
    app.config.update(flask_settings(base, overrides or {}))
    if config_name == "production":
        # Whatever FLASK_DEBUG or the command line say, production never runs the debugger.
        app.debug = False
    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_security(app)
    return app


def refuse_unsafe_production(values: Mapping[str, Any]) -> None:
    """Raise ConfigError when a deployment check fails: production does not start half-safe."""
    from project import deploy_checks
    from project.configuration import Config, ConfigError

    found = deploy_checks.problems(values, values if isinstance(values, Config) else None)
    if found:
        raise ConfigError("Refusing to start under the production config: " + " ".join(found))


def register_logging(app: Flask) -> None:
    """Set the app logger's level from LOG_LEVEL."""
    app.logger.setLevel(logging.getLevelName(app.config["LOG_LEVEL"]))


def register_extensions(app: Flask) -> None:
    """Bind the extensions to ``app``."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR") or MIGRATIONS_DIR))
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "checkin", end_autocommit)


def register_blueprints(app: Flask) -> None:
    """Register the blueprints and the JSON error handlers."""
    from project.api import errors, health, main, users

    app.register_blueprint(main.bp)
    app.register_blueprint(users.bp)
    app.register_blueprint(health.bp)
    errors.register(app)


def register_security(app: Flask) -> None:
    """Trust the configured number of proxies and add security headers to every response."""
    from project import security

    if app.config["PROXY_FIX_X_FOR"]:
        n = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    app.after_request(security.add_security_headers)
