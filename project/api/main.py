"""The API's front door."""

import marshmallow as ma

from project.openapi import Blueprint

bp = Blueprint("main", __name__, description="The front door.")


class Index(ma.Schema):
    message = ma.fields.String(required=True)
    endpoints = ma.fields.List(ma.fields.String(), required=True)


@bp.get("/")
@bp.alt_response(200, schema=Index, description="A greeting and the API's paths.", success=True)
def index():
    """Greet the caller and point at the API."""
    return {"message": "Hello from the project API.", "endpoints": ["/users", "/users/<id>", "/healthz", "/readyz"]}
