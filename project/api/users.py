"""The users resource: list, create and fetch users."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, request, url_for
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from project.api.errors import error_response
from project.extensions import autocommit_reads, db
from project.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, User, user_json

bp = Blueprint("users", __name__, url_prefix="/users")

# A pragmatic address check: one @, no spaces, a dot in the domain. Delivery is the only real test.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POSTGRES_INTEGER_MAX = 2**31 - 1
# A read that only turns into JSON selects the row, not a User: no instance or identity map to build, about a
# fifth of the request (`nox -s bench`, P3). Built once: building the expression costs as much as running it.
USER_BY_ID = select(User.__table__).where(User.__table__.c.id == bindparam("id"))


@bp.get("")
def list_users():
    """List users, oldest first, a page at a time."""
    max_per_page = current_app.config["USERS_PER_PAGE_MAX"]
    errors = {}
    page = _positive_int("page", 1, errors)
    per_page = _positive_int("per_page", min(current_app.config["USERS_PER_PAGE_DEFAULT"], max_per_page), errors)
    if "per_page" not in errors and per_page > max_per_page:
        errors["per_page"] = f"must be at most {max_per_page}."
    if errors:
        return error_response(400, "Invalid query parameters.", errors)
    autocommit_reads()
    pagination = db.paginate(
        select(User).order_by(User.id), page=page, per_page=per_page, max_per_page=max_per_page, error_out=False
    )
    return {
        "users": [user.to_dict() for user in pagination.items],
        "page": pagination.page,
        "per_page": pagination.per_page,
        "total": pagination.total,
        "pages": pagination.pages,
    }


@bp.post("")
def create_user():
    """Create a user from a JSON body with an email and a name."""
    if not request.is_json:
        return error_response(415, "Send the user as JSON with the header 'Content-Type: application/json'.")
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        return error_response(400, "The request body is nested too deeply to be a user.")
    if data is None:
        return error_response(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return error_response(400, 'The request body must be a JSON object like {"email": "...", "name": "..."}.')
    fields = validate_user(data)
    if fields:
        return error_response(400, "The user is not valid.", fields)
    user = User(email=normal_email(data["email"]), name=data["name"].strip())
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return error_response(409, f"A user with the email '{user.email}' already exists.", {"email": "is taken."})
    response = user.to_dict(), 201, {"Location": url_for("users.get_user", user_id=user.id)}
    return response


@bp.get("/<int:user_id>")
def get_user(user_id: int):
    """Return one user by id."""
    autocommit_reads()
    user = None
    if user_id <= POSTGRES_INTEGER_MAX:
        user = db.session.execute(USER_BY_ID, {"id": user_id}).one_or_none()
    if user is None:
        return error_response(404, f"There is no user with id {user_id}.")
    return user_json(user)


def validate_user(data: dict) -> dict[str, str]:
    """Return a message per invalid field of a new user; empty when the user is valid."""
    errors = {}
    for field in sorted(set(data) - {"email", "name"}):
        errors[field] = "is not a known field; send only 'email' and 'name'."
    email, name = data.get("email"), data.get("name")
    if email is None:
        errors["email"] = "is required."
    elif not isinstance(email, str):
        errors["email"] = "must be a string."
    elif len(normal_email(email)) > EMAIL_MAX_LENGTH:
        # Measured as stored: lower-casing can lengthen a string ('İ' becomes two characters).
        errors["email"] = f"must be at most {EMAIL_MAX_LENGTH} characters."
    elif not EMAIL_PATTERN.match(email.strip()) or not _storable(email):
        errors["email"] = "is not an email address."
    if name is None:
        errors["name"] = "is required."
    elif not isinstance(name, str):
        errors["name"] = "must be a string."
    elif not name.strip():
        errors["name"] = "must not be blank."
    elif len(name.strip()) > NAME_MAX_LENGTH:
        errors["name"] = f"must be at most {NAME_MAX_LENGTH} characters."
    elif not _storable(name):
        errors["name"] = "must be text without NUL characters or lone surrogates."
    return errors


def normal_email(email: str) -> str:
    """Return ``email`` as it is stored: trimmed and lower-cased."""
    return email.strip().lower()


def _storable(text: str) -> bool:
    """Tell whether PostgreSQL can store ``text`` (it refuses NUL; UTF-8 refuses lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _positive_int(name: str, default: int, errors: dict[str, str]) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if len(raw) > 9 or not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        errors[name] = "must be a whole number from 1 up."
        return default
    return int(raw)
