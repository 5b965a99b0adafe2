"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, g
from sqlalchemy.exc import SQLAlchemyError

from project.api.errors import error_response
from project.errors import first_line
from project.extensions import autocommit_reads, db, retry_on_new_connection
from project.openapi import Blueprint
from project.revisions import code_head, database_revision, newer_than_code

bp = Blueprint("health", __name__, description="Probes for load balancers and orchestrators.")


class Alive(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(["ok"]))


class Ready(ma.Schema):
    status = ma.fields.String(required=True, validate=ma.validate.OneOf(["ready"]))
    revision = ma.fields.String(required=True, allow_none=True, metadata={"description": "The code's migration head."})
    database_revision = ma.fields.String(
        metadata={"description": "The database's revision, when a newer release has migrated it ahead of the code."}
    )


@bp.get("/healthz")
@bp.alt_response(200, schema=Alive, description="The process is alive.", success=True)
def healthz():
    """Say the process is alive; touches no database."""
    return {"status": "ok"}


@bp.get("/readyz")
@bp.alt_response(200, schema=Ready, description="Ready to serve.", success=True)
@bp.alt_response(503, "SERVICE_UNAVAILABLE")
def readyz():
    """Say whether the database answers and its schema is at the code's migration head, or ahead of it.

    A schema ahead of the code means a newer release has migrated it; with expand-then-contract migrations the
    old code still works on it, so the old release stays ready while the new one rolls out.
    """
    try:
        autocommit_reads()
        current = database_revision(db.session.connection())
    except SQLAlchemyError as exc:
        if retry_on_new_connection(exc) and not g.get("retried"):
            raise  # a connection the restart cut: the app runs this probe again on a new one
        db.session.rollback()
        current_app.logger.warning("not ready: %s", first_line(getattr(exc, "orig", exc)))
        return error_response(503, "The database is unavailable.", headers={"Retry-After": "5"})
    head = code_revision()
    if current != head and newer_than_code(current, current_app.extensions["migrate"].directory):
        return {"status": "ready", "revision": head, "database_revision": current}
    if current != head:
        return error_response(
            503, f"The database schema is at revision {current or 'none'}, the code expects {head}; run the migrations."
        )
    return {"status": "ready", "revision": head}


def code_revision() -> str | None:
    """Return the migration head of the code, read once per process."""
    if "code_revision" not in current_app.extensions:
        current_app.extensions["code_revision"] = code_head(current_app.extensions["migrate"].directory)
    return current_app.extensions["code_revision"]
