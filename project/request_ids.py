"""Request ids: one per request, kept from the client's X-Request-ID when it is well-formed, made here otherwise.

The id is on the response, in every log line of the request and in error bodies, so a line in the proxy's log
leads to the app's lines and to what the client saw.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, request

HEADER = "X-Request-ID"
# What a proxy or a client may choose: bounded, and nothing that could break a log line or a header.
WELL_FORMED = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
# Kept in the request's WSGI environ: flask.g belongs to the app context, which a test may share between requests.
ENVIRON_KEY = "project.request_id"


def current_request_id() -> str:
    """Return the id of the request being handled, choosing it on first use."""
    environ = request.environ
    request_id = environ.get(ENVIRON_KEY)
    if request_id is None:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = environ[ENVIRON_KEY] = offered if WELL_FORMED.fullmatch(offered) else uuid.uuid4().hex
    return request_id


def add_request_id_header(response: Response) -> Response:
    """Tell the client the id its request was logged under."""
    response.headers[HEADER] = current_request_id()
    return response


def register(app: Flask) -> None:
    """Put the request id on every response."""
    app.after_request(add_request_id_header)
