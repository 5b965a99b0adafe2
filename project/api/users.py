"""The users resource: list, create and fetch users.

The marshmallow schemas below both validate the requests and document them in the OpenAPI document.
"""

from __future__ import annotations

from http import HTTPStatus

import marshmallow as ma
from flask import current_app, url_for
from marshmallow import validate
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from project.api.errors import error_response
from project.api.fields import WholeNumber
from project.extensions import autocommit_reads, db
from project.models import EMAIL_MAX_LENGTH, NAME_MAX_LENGTH, User, user_json
from project.openapi import Blueprint

bp = Blueprint("users", __name__, url_prefix="/users", description="The example resource: users.")

# What str.strip() removes (Python's str.isspace()), spelled out: the patterns below are also JSON Schema patterns
# in the OpenAPI document, where \s means something else.
WHITESPACE = r"\t-\r\u001c-\u001f \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# A pragmatic address check: one @, no spaces, a dot in the domain. Delivery is the only real test. Whitespace
# around it is allowed (it is trimmed); PostgreSQL refuses NUL.
_PART = rf"[^@{WHITESPACE}\u0000]+"
EMAIL_PATTERN = rf"^[{WHITESPACE}]*{_PART}@{_PART}\.{_PART}[{WHITESPACE}]*$"
# Anything but NUL, with at least one character that is not whitespace.
NAME_PATTERN = rf"^[^\u0000]*[^{WHITESPACE}\u0000][^\u0000]*$"
PAGE_MAX = 999_999_999  # nine digits: a page number is never the reason a query is slow or overflows
# A read that only turns into JSON selects the row, not a User: no instance or identity map to build, about a
# fifth of the request (`nox -s bench`, P3). Built once: building the expression costs as much as running it.
USER_BY_ID = select(User.__table__).where(User.__table__.c.id == bindparam("id"))
POSTGRES_INTEGER_MAX = 2**31 - 1
LOCATION = {"Location": {"description": "The new user's URL.", "schema": {"type": "string"}}}
# Where a created user can be read back: tools that follow links (schemathesis) chain the two operations.
READ_BACK = {201: {"links": {"GetUser": {"operationId": "getUser", "parameters": {"user_id": "$response.body#/id"}}}}}


def _storable(text: str) -> bool:
    """Tell whether PostgreSQL can store ``text`` (it refuses NUL; UTF-8 refuses lone surrogates)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Text(ma.fields.String):
    """A required string of at most ``max_length`` characters as sent and once trimmed; it is stored trimmed."""

    default_error_messages = {
        "required": "is required.",
        "null": "is required.",
        "invalid": "must be a string.",
        "invalid_utf8": "must be text.",
        "too_long": "must be at most {max} characters.",
    }

    def __init__(self, *, max_length: int, validate=(), **kwargs):
        self.max_length = max_length
        # On the value as it will be stored (what the document states), and in _deserialize on the value as sent.
        longest = ma.validate.Length(max=max_length, error=self.default_error_messages["too_long"])
        super().__init__(required=True, validate=[longest, *validate], **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) > self.max_length:
            raise self.make_error("too_long", max=self.max_length)
        return value.strip()


class Email(Text):
    """An email address as stored: trimmed and lower-cased (so one address is one user, whatever its case)."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower()


class ConfiguredMaximum(validate.Range):
    """A range from 1 up to a setting of the app's config, read when a request is validated or documented."""

    def __init__(self, setting: str, error: str):
        self.setting = setting
        super().__init__(min=1, max=None, error=error)

    @property
    def max(self):
        return current_app.config[self.setting]

    @max.setter
    def max(self, value):
        """Ignore the maximum Range sets: the config holds it."""


class NewUser(ma.Schema):
    """A user to create."""

    error_summary = "The user is not valid."

    class Meta:
        unknown = ma.RAISE

    error_messages = {
        "unknown": "is not a known field; send only 'email' and 'name'.",
        "type": 'The request body must be a JSON object like {"email": "...", "name": "..."}.',
    }

    email = Email(
        # Measured as sent and as stored: lower-casing can lengthen a string ('İ' becomes two characters).
        max_length=EMAIL_MAX_LENGTH,
        validate=[
            validate.Regexp(EMAIL_PATTERN, error="is not an email address."),
            lambda email: _storable(email) or _invalid("is not an email address."),
        ],
        metadata={
            "description": "Trimmed and lower-cased before it is checked and stored.",
            "example": "ada@example.com",
        },
    )
    name = Text(
        max_length=NAME_MAX_LENGTH,
        validate=[
            validate.Length(min=1, error="must not be blank."),
            validate.Regexp(NAME_PATTERN, error="must be text without NUL characters or lone surrogates."),
            lambda name: _storable(name) or _invalid("must be text without NUL characters or lone surrogates."),
        ],
        metadata={"description": "Trimmed before it is checked and stored.", "example": "Ada Lovelace"},
    )


class UserOut(ma.Schema):
    """A stored user."""

    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    created_at = ma.fields.DateTime(required=True)


class PageQuery(ma.Schema):
    """Which page of users to return."""

    error_summary = "Invalid query parameters."

    class Meta:
        unknown = ma.EXCLUDE

    page = WholeNumber(
        load_default=1,
        validate=validate.Range(min=1, max=PAGE_MAX, error="must be a whole number from 1 to {max}."),
        error_messages={"invalid": "must be a whole number from 1 up."},
    )
    per_page = WholeNumber(
        validate=ConfiguredMaximum("USERS_PER_PAGE_MAX", error="must be a whole number from 1 to {max}."),
        error_messages={"invalid": "must be a whole number from 1 up."},
        metadata={"description": "Users per page (default 20), at most the config's USERS_PER_PAGE_MAX."},
    )


class UserPage(ma.Schema):
    """One page of users, oldest first."""

    users = ma.fields.List(ma.fields.Nested(UserOut), required=True)
    page = ma.fields.Integer(required=True)
    per_page = ma.fields.Integer(required=True)
    total = ma.fields.Integer(required=True)
    pages = ma.fields.Integer(required=True)


def _invalid(message: str):
    raise ma.ValidationError(message)


@bp.get("")
@bp.arguments(PageQuery, location="query", as_kwargs=True)
@bp.alt_response(200, schema=UserPage, description="One page of users.", success=True)
@bp.alt_response(400, "BAD_REQUEST")
@bp.alt_response(503, "SERVICE_UNAVAILABLE")
def list_users(page: int, per_page: int | None = None):
    """List users, oldest first, a page at a time."""
    max_per_page = current_app.config["USERS_PER_PAGE_MAX"]
    if per_page is None:
        per_page = min(current_app.config["USERS_PER_PAGE_DEFAULT"], max_per_page)
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
@bp.arguments(NewUser)
@bp.alt_response(201, schema=UserOut, description="The user, created.", success=True, headers=LOCATION)
@bp.doc(responses=READ_BACK)
@bp.alt_response(400, "BAD_REQUEST")
@bp.alt_response(409, "CONFLICT")
@bp.alt_response(413, HTTPStatus(413).name)  # CONTENT_TOO_LARGE from Python 3.13 on
@bp.alt_response(415, "UNSUPPORTED_MEDIA_TYPE")
@bp.alt_response(503, "SERVICE_UNAVAILABLE")
def create_user(new_user: dict):
    """Create a user from a JSON body with an email and a name."""
    user = User(email=new_user["email"], name=new_user["name"])
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return error_response(409, f"A user with the email '{user.email}' already exists.", {"email": "is taken."})
    response = user.to_dict(), 201, {"Location": url_for("users.get_user", user_id=user.id)}
    return response


@bp.get("/<int:user_id>")
@bp.doc(operationId="getUser")
@bp.alt_response(200, schema=UserOut, description="The user.", success=True)
@bp.alt_response(404, "NOT_FOUND")
@bp.alt_response(503, "SERVICE_UNAVAILABLE")
def get_user(user_id: int):
    """Return one user by id."""
    autocommit_reads()
    user = None
    if user_id <= POSTGRES_INTEGER_MAX:
        user = db.session.execute(USER_BY_ID, {"id": user_id}).one_or_none()
    if user is None:
        return error_response(404, f"There is no user with id {user_id}.")
    return user_json(user)
