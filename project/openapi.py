"""The API's OpenAPI document and its docs page.

flask-smorest builds the document from the marshmallow schemas the views declare, and the same schemas validate
the requests (webargs), so the document cannot drift from the code. The document is served at
``/openapi.json`` in every config; the Swagger UI page at ``/docs`` (assets from the flask-swagger-ui package,
nothing from the network) only where ``API_DOCS`` is on.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

import marshmallow as ma
from flask import Flask, Response
from flask_smorest import Api
from flask_smorest import Blueprint as _Blueprint
from webargs.flaskparser import FlaskParser, abort, is_json_request

OPENAPI_VERSION = "3.0.3"
DOCS_PATH = "/docs"
# Swagger UI runs inline scripts and styles and fetches the document; nothing else, and nothing from elsewhere.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


class ErrorSchema(ma.Schema):
    """The body of every error the API returns."""

    error = ma.fields.String(required=True, metadata={"description": "The status's reason phrase."})
    status = ma.fields.Integer(required=True, metadata={"description": "The HTTP status code."})
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, in one sentence."})
    fields = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        metadata={"description": "One sentence per invalid field, when fields are to blame."},
    )
    request_id = ma.fields.String(
        metadata={"description": "The request's id, as in the X-Request-ID header and the logs."}
    )


class RequestParser(FlaskParser):
    """webargs' Flask parser, answering a bad request with a 400 (or 415) in the project's error shape."""

    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req):
        if not is_json_request(req):
            abort(415, message="Send the body as JSON with the header 'Content-Type: application/json'.")
        if not req.get_data(cache=True):
            abort(400, message="The request body is not valid JSON.")  # webargs would read it as no fields at all
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            abort(400, message="The request body is nested too deeply.")

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        abort(400, message="The request body is not valid JSON.")

    def handle_error(self, error, req, schema, *, error_status_code, error_headers):
        """Abort with one sentence per bad field; a problem with the whole input becomes the message."""
        ((location, messages),) = error.messages.items()
        messages = messages if isinstance(messages, Mapping) else {"_schema": messages}
        fields = {name: first_sentence(found) for name, found in messages.items() if name != "_schema"}
        summary = getattr(schema, "error_summary", None) or f"The request's {location} is not valid."
        message = first_sentence(messages["_schema"]) if "_schema" in messages else summary
        abort(error_status_code or self.DEFAULT_VALIDATION_STATUS, message=message, fields=fields)


class Blueprint(_Blueprint):
    """A flask-smorest blueprint that parses arguments with :class:`RequestParser`."""

    ARGUMENTS_PARSER = RequestParser()


class ProjectApi(Api):
    """flask-smorest's Api, documenting the project's error body and leaving error handling to the app."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: every status an operation may return is documented by name, so a
    # contract test can tell an undocumented one.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_error_handlers(self):
        """Leave errors to :mod:`project.api.errors`, which answers every one in the same shape."""


def first_sentence(messages) -> str:
    """Return the first message in marshmallow's nested lists and dicts of messages."""
    while not isinstance(messages, str):
        messages = next(iter(messages.values())) if isinstance(messages, Mapping) else messages[0]
    return messages


def openapi_settings(app: Flask) -> dict:
    """Return flask-smorest's settings: the title names the project (its package), the document is at the root."""
    package = app.import_name.split(".")[0]
    return {
        "API_TITLE": f"{package.replace('_', ' ').capitalize()} API",
        "API_VERSION": app.config.get("API_VERSION", "1"),
        "OPENAPI_VERSION": OPENAPI_VERSION,
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
    }


def register(app: Flask, blueprints) -> None:
    """Document ``blueprints`` and register them on ``app``; add the docs page where API_DOCS is on."""
    for key, value in openapi_settings(app).items():
        app.config.setdefault(key, value)
    api = ProjectApi(app)  # one per app: it holds the app's document
    with app.app_context():  # some schemas document limits read from the app's config
        for blueprint in blueprints:
            api.register_blueprint(blueprint)
    if app.config.get("API_DOCS"):
        register_docs_page(app)


def register_docs_page(app: Flask) -> None:
    """Serve Swagger UI at /docs from the flask-swagger-ui package, titled with the project's name."""
    from flask_swagger_ui import get_swaggerui_blueprint

    docs = get_swaggerui_blueprint(
        DOCS_PATH,
        "/openapi.json",
        config={
            "app_name": app.config["API_TITLE"],
            "validatorUrl": None,  # Swagger UI would otherwise send the document to a public validator
            "oauth2RedirectUrl": f"{DOCS_PATH}/oauth2-redirect.html",
        },
        blueprint_name="docs",
    )
    docs.after_request(allow_docs_page)
    app.register_blueprint(docs)


def allow_docs_page(response: Response) -> Response:
    """Let the docs page run its own inline script (by hash) and assets from this origin, nothing else."""
    if response.mimetype == "text/html" and not response.direct_passthrough:
        hashes = [hashlib.sha256(script).digest() for script in INLINE_SCRIPT.findall(response.get_data())]
        scripts = " ".join(f"'sha256-{base64.b64encode(digest).decode()}'" for digest in hashes)
        response.headers["Content-Security-Policy"] = DOCS_POLICY.format(scripts=scripts)
    return response
