"""JSON error responses: every error the API returns goes through :func:`error_response`."""

from __future__ import annotations

from flask import Flask, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from project.extensions import db


def error_response(status: int, message: str, fields: dict[str, str] | None = None, headers=None):
    """Return a JSON error body with ``status``, its reason phrase and a sentence."""
    body = {"error": HTTP_STATUS_CODES.get(status, "Error"), "status": status, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify(body)
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def database_unavailable():
    """Return the 503 that tells a client the database cannot be reached right now."""
    return error_response(503, "The database is unavailable; try again shortly.", headers={"Retry-After": "5"})


def register(app: Flask) -> None:
    """Register the handlers that turn every error into JSON."""

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        headers = dict(exc.get_response().headers)
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
        return error_response(exc.code or 500, exc.description or "", headers=headers)

    @app.errorhandler(OperationalError)
    def handle_database_unavailable(exc: OperationalError):
        db.session.rollback()
        if exc.connection_invalidated or _is_connection_failure(exc):
            app.logger.warning("database unavailable: %s", str(exc.orig).strip().splitlines()[0])
            return database_unavailable()
        return handle_internal_error(exc)

    @app.errorhandler(Exception)
    def handle_internal_error(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error", exc_info=exc)
        return error_response(500, InternalServerError.description)


def _is_connection_failure(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return any(
        phrase in text
        for phrase in (
            "connection refused",
            "could not connect",
            "timeout expired",
            "server closed the connection",
            "terminating connection",
            "the database system is",
            "no connection to the server",
            "connection to server",
        )
    )
