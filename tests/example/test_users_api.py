"""The users API: every status it promises, always as JSON."""

import pytest

from devtools.databases import connect


def post(client, body, **kw):
    return client.post("/users", json=body, **kw)


def test_index_greets(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "Hello" in response.json["message"]


def test_list_users_is_empty_at_first(client):
    response = client.get("/users")
    assert response.status_code == 200
    assert response.json == {"users": [], "page": 1, "per_page": 20, "total": 0, "pages": 0}


def test_create_user_then_list_and_fetch_it(client):
    response = post(client, {"email": " Ann@Example.COM ", "name": " Ann "})
    assert response.status_code == 201
    user = response.json
    assert user["email"] == "ann@example.com" and user["name"] == "Ann"
    assert response.headers["Location"] == f"/users/{user['id']}"
    assert client.get("/users").json["users"] == [user]
    assert client.get(f"/users/{user['id']}").json == user


def test_create_user_rejects_duplicate_email(client):
    assert post(client, {"email": "a@example.com", "name": "A"}).status_code == 201
    response = post(client, {"email": "A@example.com", "name": "B"})
    assert response.status_code == 409
    assert response.json["fields"] == {"email": "is taken."}
    assert client.get("/users").json["total"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"email": "is required.", "name": "is required."}),
        ({"email": "nope", "name": "A"}, {"email": "is not an email address."}),
        ({"email": 5, "name": ["A"]}, {"email": "must be a string.", "name": "must be a string."}),
        ({"email": "a@b.co", "name": "   "}, {"name": "must not be blank."}),
        ({"email": "a@b.co", "name": "x" * 101}, {"name": "must be at most 100 characters."}),
        ({"email": "a" * 250 + "@b.co", "name": "A"}, {"email": "must be at most 254 characters."}),
        ({"email": "a@b.co", "name": "A\x00"}, {"name": "must be text without NUL characters or lone surrogates."}),
        ({"email": "a@b.co", "name": "A\ud800"}, {"name": "must be text without NUL characters or lone surrogates."}),
        ({"email": "a\udfff@b.co", "name": "A"}, {"email": "is not an email address."}),
        ({"email": "a\x00@b.co", "name": "A"}, {"email": "is not an email address."}),
        (
            {"email": "a@b.co", "name": "A", "admin": True},
            {"admin": "is not a known field; send only 'email' and 'name'."},
        ),
    ],
)
def test_create_user_names_each_bad_field(client, body, fields):
    response = post(client, body)
    assert response.status_code == 400
    assert response.json["fields"] == fields
    assert client.get("/users").json["total"] == 0


def test_create_user_rejects_a_body_that_is_not_json(client):
    response = client.post("/users", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["message"] == "The request body is not valid JSON."


def test_create_user_rejects_json_that_is_not_an_object(client):
    response = post(client, ["a@b.co", "A"])
    assert response.status_code == 400
    assert "JSON object" in response.json["message"]


def test_create_user_rejects_a_wrong_content_type(client):
    response = client.post("/users", data="email=a@b.co", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.is_json


def test_pagination(client, user_factory):
    for _ in range(5):
        user_factory()
    response = client.get("/users?page=2&per_page=2")
    assert response.status_code == 200
    assert [u["email"] for u in response.json["users"]] == ["user3@example.com", "user4@example.com"]
    assert response.json["total"] == 5 and response.json["pages"] == 3
    assert client.get("/users?page=4&per_page=2").json["users"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=x", "page"),
        ("per_page=-1", "per_page"),
        ("per_page=101", "per_page"),
        ("page=99999999999999999999", "page"),
        ("page=%C2%B2", "page"),
        ("page=%F0%91%83%B4", "page"),  # Chakma four, which int() reads as 4
        ("page=1_0", "page"),
        ("per_page=%203", "per_page"),
    ],
)
def test_pagination_rejects_bad_parameters(client, query, field):
    response = client.get(f"/users?{query}")
    assert response.status_code == 400
    assert field in response.json["fields"]


def test_per_page_maximum_comes_from_the_config(client, app, user_factory):
    app.config["USERS_PER_PAGE_MAX"] = 3
    try:
        assert client.get("/users?per_page=4").status_code == 400
        assert client.get("/users?per_page=3").status_code == 200
    finally:
        app.config["USERS_PER_PAGE_MAX"] = 100


def test_get_missing_user_is_404_json(client):
    response = client.get("/users/12345")
    assert response.status_code == 404
    assert response.json["error"] == "Not Found"


@pytest.mark.parametrize("zero", [0x660, 0xFF10])  # Arabic-Indic and full-width digits
def test_an_id_in_digits_other_than_ascii_is_404(client, user_factory, zero):
    user = user_factory()
    assert client.get(f"/users/{user.id}").status_code == 200
    other = "".join(chr(zero + int(digit)) for digit in str(user.id))
    assert client.get(f"/users/{other}").status_code == 404


def test_get_user_with_an_id_beyond_the_column_is_404_not_500(client):
    assert client.get(f"/users/{2**63}").status_code == 404


def test_unknown_route_and_wrong_method_are_json(client):
    assert client.get("/nowhere").json["status"] == 404
    response = client.delete("/users")
    assert response.status_code == 405 and response.is_json
    assert "GET" in response.headers["Allow"]


def test_unexpected_error_is_a_json_500_and_rolls_back(app, client, db_session, monkeypatch):
    def flush_then_explode():
        db_session.flush()  # the new user is written, but not committed, when the error strikes
        raise RuntimeError("boom")

    monkeypatch.setattr(db_session, "commit", flush_then_explode)
    app.logger.disabled = True
    try:
        response = post(client, {"email": "half@example.com", "name": "Half"})
    finally:
        app.logger.disabled = False
    assert response.status_code == 500
    assert response.json["message"].startswith("The server encountered an internal error")
    monkeypatch.undo()
    # The test's requests share one session, as one request's code does: nothing half-written survives the 500.
    assert not db_session.new and not db_session.dirty
    assert client.get("/users").json["total"] == 0


def test_commits_are_rolled_back_when_the_test_ends(database):
    from project import create_app
    from project.extensions import db
    from tests.helpers import isolated

    app = create_app("testing", overrides=database)
    try:
        with isolated(app):
            assert post(app.test_client(), {"email": "leak@example.com", "name": "Leak"}).status_code == 201
            assert app.test_client().get("/users").json["total"] == 1
        with isolated(app):
            assert app.test_client().get("/users").json["total"] == 0
        with connect(database) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users WHERE email = 'leak@example.com'")
            assert cur.fetchone() == (0,)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_body_nested_200000_deep_is_a_400_naming_the_problem(client):
    response = client.post("/users", data="[" * 200_000, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json["message"]


def test_a_page_number_of_5000_digits_is_a_400_naming_the_field(client):
    response = client.get("/users", query_string={"page": "9" * 5000})
    assert response.status_code == 400 and response.json["fields"] == {"page": "must be a whole number from 1 up."}


def test_an_email_that_grows_past_the_limit_when_lower_cased_is_a_400(client):
    email = "İ" * 200 + "@example.com"  # 212 characters as sent, 412 once lower-cased
    response = client.post("/users", json={"email": email, "name": "N"})
    assert response.status_code == 400 and response.json["fields"]["email"] == "must be at most 254 characters."


@pytest.mark.parametrize("path", ["/users/1", "/users?page=1", "/readyz"])
def test_reads_go_out_without_a_transaction(database, path):
    """On the app's own engine a read needs no BEGIN and no ROLLBACK: each query is one round trip."""
    from sqlalchemy import event

    from project import create_app
    from project.extensions import db

    app = create_app("testing", overrides=database)
    seen = []
    with app.app_context():
        event.listen(
            db.engine,
            "before_cursor_execute",
            lambda conn, cursor, statement, *rest: seen.append(conn.connection.dbapi_connection.autocommit),
        )
        try:
            assert app.test_client().get(path).status_code in (200, 404)
        finally:
            db.engine.dispose()
    assert seen and all(seen)


def test_the_longest_email_and_name_are_accepted(client):
    email, name = "a" * 242 + "@example.com", "N" * 100  # 254 and 100 characters, the columns' limits
    response = post(client, {"email": email, "name": name})
    assert response.status_code == 201, response.json
    assert (response.json["email"], response.json["name"]) == (email, name)


@pytest.mark.parametrize(("page", "status"), [("123456789", 200), ("1000000000", 400)])
def test_page_numbers_have_at_most_nine_digits(client, page, status):
    assert client.get("/users", query_string={"page": page}).status_code == status


def test_the_patterns_whitespace_is_what_trimming_removes():
    """The document's patterns spell whitespace out; it must be exactly what str.strip() removes."""
    import re
    import sys

    from project.api.users import WHITESPACE

    spelled = re.compile(f"[{WHITESPACE}]")
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if bool(spelled.fullmatch(c)) != c.isspace()] == []


def test_a_value_longer_than_its_limit_as_sent_is_refused_even_if_trimming_would_shorten_it(client):
    response = post(client, {"email": "a@b.co", "name": " " + "N" * 100})
    assert response.status_code == 400 and response.json["fields"] == {"name": "must be at most 100 characters."}


# -- the fields the schemas are made of, built here (the schemas' own are built once, on import) -------------------


def loaded(field, value):
    """Load ``{"v": value}`` through a schema holding ``field``; return the value or the field's error messages."""
    import marshmallow as ma

    try:
        return ma.Schema.from_dict({"v": field})().load({} if value is None else {"v": value})["v"]
    except ma.ValidationError as error:
        return error.messages["v"]


def test_a_text_field_is_required_at_most_its_length_as_sent_and_stored_trimmed():
    from project.api.users import Text

    def field():
        return Text(max_length=4, validate=[lambda v: v != "no" or _refuse("is no good.")], metadata={"x": 1})

    assert loaded(field(), " ab ") == "ab"
    assert loaded(field(), None) == ["is required."]
    assert loaded(field(), "abcde") == ["must be at most 4 characters."]
    assert loaded(field(), "no") == ["is no good."]  # the validators given run beside the length
    assert field().metadata == {"x": 1}


def test_an_email_is_lower_cased_and_its_length_checked_again_once_lengthened():
    from project.api.users import Email

    assert loaded(Email(max_length=3), "AB ") == "ab"
    assert loaded(Email(max_length=3), "İİ") == ["must be at most 3 characters."]  # "i̇i̇": four characters


@pytest.mark.parametrize(("value", "refused"), [(0, True), (1, False), (5, False), (6, True)])
def test_a_configured_maximum_runs_from_one_to_the_configs_value(app, value, refused):
    import marshmallow as ma

    from project.api.users import ConfiguredMaximum

    app.config["A_LIMIT"] = 5
    check = ConfiguredMaximum("A_LIMIT", error="from {min} to {max}")
    with app.test_request_context():
        if refused:
            with pytest.raises(ma.ValidationError, match="^from 1 to 5$"):
                check(value)
        else:
            assert check(value) == value


@pytest.mark.parametrize(("text", "storable"), [("ok", True), ("a\x00b", False), ("\ud800", False)])
def test_storable_text_has_no_nul_and_no_lone_surrogate(text, storable):
    from project.api.users import _storable

    assert _storable(text) is storable


def _refuse(message):
    import marshmallow as ma

    raise ma.ValidationError(message)
