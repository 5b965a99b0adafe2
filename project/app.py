"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from sqlalchemy.exc import DBAPIError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from project.extensions import db, migrate, retry_on_new_connection, watch_pool
from project.revisions import MIGRATIONS_DIR
from project.settings import config_class, flask_settings

# Methods that change nothing, so running one twice is the same as running it once (RFC 9110, 9.2.2).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class AsciiIntegerConverter(IntegerConverter):
    """Werkzeug's ``int`` converter for ASCII digits only: its ``\\d`` also matches other scripts' digits ("١"),
    which ``int()`` reads as numbers, so ``/users/١`` would be user 1."""

    regex = r"[0-9]+"


class Application(Flask):
    """Flask, plus one retry of a safe request whose connection turned out dead (a database restart).

    The pool pings only connections that sat idle (see :func:`project.extensions.watch_pool`), so a restart can
    leave a recently used connection dead. The first statement on it fails and invalidates the pool; a safe
    request then runs its view again on a new connection and the client never sees the restart. An unsafe one
    (POST) is not repeated: it gets the usual 503 and the client decides; nor is a view marked with
    :func:`no_retry` (a GET that writes, say).
    """

    def dispatch_request(self):
        try:
            return super().dispatch_request()
        except DBAPIError as exc:
            view = self.view_functions.get(request.endpoint or "")
            if request.method not in SAFE_METHODS or getattr(view, "no_retry", False):
                raise
            if not retry_on_new_connection(exc):
                raise
            db.session.rollback()
            # Once: the second run is the parent's dispatch, which does not come back here.
            self.logger.info("retrying %s %s on a new connection after: %s", request.method, request.path, exc.orig)
            return super().dispatch_request()


def no_retry(view):
    """Mark ``view`` as one never to run twice, though its method is safe (a GET that writes a row, say)."""
    view.no_retry = True
    return view


def create_app(config_name: str = "development", overrides: Mapping[str, Any] | None = None) -> Flask:
    """Create the app from the config class ``config_name`` and the settings in ``overrides``.

    ``overrides`` is usually a loaded config (string values, as in ``config/<name>.json``); tests may
    also pass typed Flask settings such as ``SQLALCHEMY_DATABASE_URI``.
    """
    base = config_class(config_name)
    if config_name == "production":
        refuse_unsafe_production(overrides or {})
    app = Application(__name__)
    app.config.from_object(base)
    app.config["CONFIG_NAME"] = config_name
    app.config.update(flask_settings(base, overrides or {}))
    register_logging(app)
    register_observability(app, overrides or {})
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


def register_observability(app: Flask, values: Mapping[str, Any]) -> None:
    """Give each request an id, record its metrics (before the pool is made, which metrics measures), and report
    unhandled errors when a SENTRY_DSN is configured."""
    from project import error_reporting, logs, metrics, request_ids
    from project.configuration import Config

    request_ids.register(app)
    metrics.register(app)
    secret_names = values.secrets() if isinstance(values, Config) else ()
    error_reporting.register(app, logs.secret_values(values, secret_names))


def register_extensions(app: Flask) -> None:
    """Bind the extensions to ``app``."""
    import project.models  # noqa: F401  the models' tables, which migrations are compared with, whatever imports them

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR") or MIGRATIONS_DIR))
    with app.app_context():
        for engine in db.engines.values():
            watch_pool(engine, ping_after_idle=app.config["POOL_PING_AFTER_IDLE_SECONDS"])


def register_blueprints(app: Flask) -> None:
    """Register the blueprints, their OpenAPI document and the JSON error handlers."""
    from project import openapi
    from project.api import errors, health, main, users

    app.url_map.converters["int"] = AsciiIntegerConverter
    openapi.register(app, [main.bp, users.bp, health.bp])
    errors.register(app)


def register_security(app: Flask) -> None:
    """Trust the configured number of proxies and add security headers to every response."""
    from project import security

    if app.config["PROXY_FIX_X_FOR"]:
        n = app.config["PROXY_FIX_X_FOR"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    app.after_request(security.add_security_headers)
