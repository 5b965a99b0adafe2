"""Log lines: one JSON object per line in production (LOG_FORMAT=json), plain text for development.

The app's loggers and gunicorn's (its error log and its access log) go through the same handler, configured by
:func:`logging_config` (gunicorn's ``logconfig_dict``). Every line of a request carries its request id. What a
line holds is chosen field by field, never a dump of headers or the environment, and the values of the config's
secrets are masked wherever they would appear (a message, an exception).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from flask import has_request_context
from pythonjsonlogger.json import JsonFormatter

from project.request_ids import current_request_id

MASK = "[Filtered]"
# Settings whose values are never written anywhere: the config's secrets (valueFrom) are added to these.
SECRET_SETTINGS = ("SECRET_KEY", "POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD", "SENTRY_DSN")
# Names of headers, fields and variables that hold credentials, for every sink (logs and error reports).
SENSITIVE_NAMES = (
    "authorization",
    "proxy_authorization",
    "cookie",
    "set_cookie",
    "password",
    "passwd",
    "secret",
    "secret_key",
    "token",
    "api_key",
    "dsn",
    "sentry_dsn",
    "postgres_password",
    "postgres_migration_password",
    "sqlalchemy_database_uri",
)
# Fields of gunicorn's access-log atoms that a line keeps (never the headers or the environment it also carries).
ACCESS_FIELDS = {"m": "method", "U": "path", "s": "status", "h": "remote_addr", "B": "bytes"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
JSON_FIELDS = ("levelname", "name", "message", "request_id", "process")


def secret_values(config: Mapping[str, Any], secret_names: Iterable[str] = ()) -> tuple[str, ...]:
    """Return the values of the settings that are secrets, longest first (a short one may be part of another)."""
    names = set(SECRET_SETTINGS) | set(secret_names)
    values = {str(config[name]) for name in names if config.get(name)}
    return tuple(sorted(values, key=len, reverse=True))


def mask(text: str, secrets: Iterable[str]) -> str:
    """Return ``text`` with every occurrence of a secret replaced by the mask."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class RequestIdFilter(logging.Filter):
    """Give every record the id of the request it was logged in ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id() if has_request_context() else "-"
        return True


class SecretsFilter(logging.Filter):
    """Mask the values of the config's secrets in a record's message and exception before any formatter sees it."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        masked = mask(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            masked = mask(text, self.secrets)
            if masked != text:
                # Formatters print exc_text when exc_info is gone; the record keeps no trace of the original.
                record.exc_info, record.exc_text = None, masked
        return True


class Formatter(JsonFormatter):
    """JSON lines with time, level, logger, message and request id; an access line also gets its request's fields."""

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            atoms = record.args
            log_data.update({field: atoms.get(atom) for atom, field in ACCESS_FIELDS.items()})
            log_data["status"] = int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s")
            log_data["duration_ms"] = round(atoms.get("D", 0) / 1000, 3)
            log_data["request_id"] = atoms.get("{x-request-id}o", "-")


class TextFormatter(logging.Formatter):
    """Plain lines for development; an access line takes its request id from the response."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            record.request_id = record.args.get("{x-request-id}o", "-")
        return super().format(record)


def logging_config(log_format: str, level: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Return the ``dictConfig`` that sends the app's and gunicorn's lines to stdout, as ``log_format``."""
    renames = {"levelname": "level", "name": "logger", "exc_info": "exception", "process": "pid"}
    formatter = (
        {"()": Formatter, "fmt": list(JSON_FIELDS), "rename_fields": renames, "timestamp": "time"}
        if log_format == "json"
        else {"()": TextFormatter, "fmt": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": "default",
        "filters": ["request_id", "secrets"],
    }
    gunicorn = {"level": level, "handlers": ["default"], "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}, "secrets": {"()": SecretsFilter, "secrets": list(secrets)}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"level": level, "handlers": ["default"]},
        "loggers": {
            "gunicorn.error": gunicorn,
            "gunicorn.access": {**gunicorn, "level": "INFO"},
            "alembic": {"level": "WARNING"},  # its plugin list on every start says nothing about the app
        },
    }
