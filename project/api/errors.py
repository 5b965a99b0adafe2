"""JSON error responses: every error the API returns goes through :func:`error_response`."""

from __future__ import annotations

from flask import Flask, has_request_context, jsonify
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

from project.errors import first_line
from project.extensions import db
from project.request_ids import current_request_id


def error_response(status: int, message: str, fields: dict[str, str] | None = None, headers=None):
    """Return a JSON error body with ``status``, its reason phrase and a sentence."""
    body = {"error": HTTP_STATUS_CODES.get(status, "Error"), "status": status, "message": message}
    if fields:
        body["fields"] = fields
    if has_request_context():
        body["request_id"] = current_request_id()
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
        # The driver's OperationalError covers a server that is down or restarting, a dropped connection,
        # a timeout or a deadlock: none is the client's fault, and each is worth a retry.
        db.session.rollback()
        app.logger.warning("database unavailable: %s", first_line(exc.orig))
        return database_unavailable()

    @app.errorhandler(Exception)
    def handle_internal_error(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error", exc_info=exc)
        return error_response(500, InternalServerError.description)
