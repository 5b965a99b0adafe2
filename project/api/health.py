"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from project.api.errors import error_response
from project.database import first_line
from project.extensions import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Say the process is alive; touches no database."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Say whether the database answers and its schema is at the code's migration head."""
    try:
        db.session.execute(text("SELECT 1"))
        current = database_revision()
    except SQLAlchemyError as exc:
        db.session.rollback()
        current_app.logger.warning("not ready: %s", first_line(getattr(exc, "orig", exc)))
        return error_response(503, "The database is unavailable.", headers={"Retry-After": "5"})
    head = code_revision()
    if current != head:
        return error_response(
            503, f"The database schema is at revision {current or 'none'}, the code expects {head}; run the migrations."
        )
    return {"status": "ready", "revision": head}


def database_revision() -> str | None:
    """Return the migration revision the database is at, or None before any migration."""
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(db.session.connection())
    heads = context.get_current_heads()
    return ",".join(sorted(heads)) or None


def code_revision() -> str | None:
    """Return the migration head of the code, read once per process."""
    revision = current_app.extensions.get("code_revision")
    if revision is None:
        from alembic.script import ScriptDirectory

        script = ScriptDirectory(current_app.extensions["migrate"].directory)
        revision = ",".join(sorted(script.get_heads())) or None
        current_app.extensions["code_revision"] = revision
    return revision
