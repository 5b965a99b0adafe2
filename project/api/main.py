"""The API's front door."""

from flask import Blueprint

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """Greet the caller and point at the API."""
    return {"message": "Hello from the project API.", "endpoints": ["/users", "/users/<id>", "/healthz", "/readyz"]}
