"""The app's guards at their rules: which requests run again after their connection died, which digits a URL's
or a request field's integer takes, which headers every response gets, how many proxies are trusted, and where the
migrations are."""

import logging

import marshmallow as ma
import pytest
from sqlalchemy.exc import OperationalError

from project import create_app
from project.api.fields import WholeNumber
from project.app import SAFE_METHODS, no_retry
from project.extensions import db
from project.revisions import MIGRATIONS_DIR
from project.security import HEADERS, HSTS
from tests.helpers import STRONG

ALL_METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"]


def dead_connection(invalidated: bool = True) -> OperationalError:
    """The error SQLAlchemy raises when a statement's connection died (a database restart): the pool is invalidated."""
    cause = Exception("server closed the connection")
    return OperationalError("SELECT 1", {}, cause, connection_invalidated=invalidated)


class Flaky:
    """A view that fails on its first ``failures`` runs with ``error`` and records what each run saw."""

    def __init__(self, failures: int, error=dead_connection):
        self.failures, self.error, self.runs, self.in_transaction = failures, error, 0, []

    def __call__(self):
        self.runs += 1
        self.in_transaction.append(db.session().in_transaction())
        if self.runs <= self.failures:
            db.session.execute(db.text("SELECT 1"))  # the failed run leaves a transaction behind
            raise self.error()
        return {"runs": self.runs}


@pytest.fixture
def fresh_app(database):
    """An app of its own (not the test transaction's), so a view sees the session as a request would."""
    app = create_app("testing", overrides=database)
    yield app
    with app.app_context():
        db.engine.dispose()


def call(app, view, method: str, *, marked: bool = False):
    app.add_url_rule("/flaky", "flaky", view_func=no_retry(view) if marked else view, methods=ALL_METHODS)
    return app.test_client().open("/flaky", method=method)


def test_the_safe_methods_are_exactly_rfc_9110s_read_only_ones():
    assert SAFE_METHODS == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_only_a_safe_request_runs_again_after_its_connection_died(fresh_app, method, caplog):
    view = Flaky(failures=1)
    with caplog.at_level(logging.INFO, logger=fresh_app.logger.name):
        response = call(fresh_app, view, method)
    if method in ("GET", "HEAD", "OPTIONS"):
        assert (response.status_code, view.runs) == (200, 2)
        assert f"retrying {method} /flaky on a new connection after: server closed the connection" in caplog.messages
        assert view.in_transaction == [False, False]  # the second run starts on a clean session
    else:
        assert (response.status_code, view.runs) == (503, 1)
        assert not any(m.startswith("retrying") for m in caplog.messages)


def test_a_safe_request_runs_again_only_once(fresh_app):
    view = Flaky(failures=5)
    response = call(fresh_app, view, "GET")
    assert (response.status_code, view.runs) == (503, 2)


def test_a_view_marked_no_retry_runs_once_though_its_method_is_safe(fresh_app):
    view = Flaky(failures=1)
    response = call(fresh_app, view, "GET", marked=True)
    assert (response.status_code, view.runs) == (503, 1)


def test_an_error_that_left_the_connection_alive_is_not_retried(fresh_app):
    view = Flaky(failures=1, error=lambda: dead_connection(invalidated=False))
    response = call(fresh_app, view, "GET")
    assert (response.status_code, view.runs) == (503, 1)


def test_no_retry_marks_the_view_and_returns_it():
    def view():
        return {}

    assert no_retry(view) is view and view.no_retry is True


def test_a_url_integer_takes_ascii_digits_only(fresh_app):
    seen = []
    fresh_app.add_url_rule("/numbers/<int:n>", view_func=lambda n: seen.append(n) or {"n": n})
    ascii_digits = fresh_app.test_client().get("/numbers/0123456789")
    assert ascii_digits.status_code == 200 and seen == [123456789]
    for other in ("٣", "１", "1٣", "٣1"):
        assert fresh_app.test_client().get(f"/numbers/{other}").status_code == 404
    assert seen == [123456789]


def names_and_values(response) -> list[tuple[str, str]]:
    return [(name, value) for name, value in response.headers.items() if name in {n for n, _ in (*HEADERS, HSTS)}]


def test_every_response_gets_the_security_headers_as_written(fresh_app):
    response = fresh_app.test_client().get("/nowhere")
    assert names_and_values(response) == list(HEADERS)
    assert dict(HEADERS) == {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
    }


def test_hsts_is_added_where_configured_for_a_year_with_subdomains(database):
    app = create_app("production", overrides={**database, **STRONG})
    response = app.test_client().get("/nowhere")
    hsts = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    assert names_and_values(response) == [*HEADERS, hsts]


@pytest.mark.parametrize("name", [n for n, _ in (*HEADERS, HSTS)])
def test_any_security_header_a_view_sets_is_kept_whatever_its_case(database, name):
    app = create_app("production", overrides={**database, **STRONG})
    own = name.swapcase()

    @app.get("/own")
    def own_header():
        return {}, 200, {own: "the view's"}

    response = app.test_client().get("/own")
    assert response.headers.getlist(name) == ["the view's"]
    others = [(n, v) for n, v in (*HEADERS, HSTS) if n != name]
    assert [(n, v) for n, v in names_and_values(response) if n != own] == others


@pytest.mark.parametrize("proxies", [1, 2, 3])
def test_exactly_the_configured_number_of_proxies_is_trusted_for_every_forwarded_header(database, proxies):
    app = create_app("testing", overrides={**database, "PROXY_FIX_X_FOR": str(proxies)})
    seen = {}

    @app.get("/where")
    def where():
        from flask import request

        seen.update(addr=request.remote_addr, scheme=request.scheme, host=request.host)
        return {}

    hops = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    headers = {
        "X-Forwarded-For": ", ".join(hops),
        "X-Forwarded-Proto": "https, http, https",
        "X-Forwarded-Host": ", ".join(["a.example", "b.example", "c.example"]),
        "X-Forwarded-Port": ", ".join(["8441", "8442", "8443"]),
    }
    app.test_client().get("/where", headers=headers)
    index = 3 - proxies
    assert seen["addr"] == hops[index]
    assert seen["scheme"] == ["https", "http", "https"][index]
    assert seen["host"] == f"{'abc'[index]}.example:{8441 + index}"


def test_no_forwarded_header_is_trusted_without_a_proxy(database):
    app = create_app("testing", overrides={**database, "PROXY_FIX_X_FOR": "0"})
    seen = {}

    @app.get("/where")
    def where():
        from flask import request

        seen.update(addr=request.remote_addr, host=request.host)
        return {}

    app.test_client().get("/where", headers={"X-Forwarded-For": "203.0.113.1", "X-Forwarded-Host": "evil.example"})
    assert seen == {"addr": "127.0.0.1", "host": "localhost"}


@pytest.mark.parametrize("level", ["DEBUG", "WARNING", "ERROR"])
def test_the_app_logs_at_the_configured_level(database, level):
    app = create_app("testing", overrides={**database, "LOG_LEVEL": level})
    assert app.logger.level == getattr(logging, level)


def test_the_migrations_directory_is_the_projects_unless_configured(database, tmp_path):
    default = create_app("testing", overrides=database)
    assert default.extensions["migrate"].directory == str(MIGRATIONS_DIR)
    other = create_app("testing", overrides={**database, "MIGRATIONS_DIR": str(tmp_path)})
    assert other.extensions["migrate"].directory == str(tmp_path)


def test_production_refuses_a_secret_written_into_its_config_file(tmp_path):
    import json

    from project import deploy_checks
    from project.app import refuse_unsafe_production
    from project.configuration import ConfigError, load_config
    from tests.helpers import ROOT, STRONG_PASSWORD, STRONG_SECRET_KEY

    entries = json.loads((ROOT / "config" / "production.json").read_text())
    (tmp_path / "production.json").write_text(json.dumps([*entries, {"name": "API_TOKEN", "value": "abc123"}]))
    environ = {"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD}
    config = load_config("production", environ=environ, config_dir=tmp_path)
    refuse_unsafe_production(dict(config))  # the values alone are safe: only the file holds the secret
    with pytest.raises(ConfigError) as refused:
        refuse_unsafe_production(config)
    assert str(refused.value) == (
        "Refusing to start under the production config: "
        f"{tmp_path / 'production.json'}: API_TOKEN looks like a secret but is stored as a literal 'value'; use "
        "'valueFrom'."
    )
    unsafe = config.replace(SECRET_KEY="short", FLASK_DEBUG="1")
    with pytest.raises(ConfigError) as refused:
        refuse_unsafe_production(unsafe)
    said = deploy_checks.problems(unsafe, unsafe)
    assert len(said) == 3  # each sentence once, a space apart
    assert str(refused.value) == "Refusing to start under the production config: " + " ".join(said)


def test_the_app_is_the_development_one_unless_named_and_only_production_is_held_to_the_deploy_checks():
    from project.configuration import ConfigError, load_config

    development = load_config("development", environ={})
    assert create_app(overrides=development).config["CONFIG_NAME"] == "development"
    weak = load_config("testing", environ={}).replace(SECRET_KEY="short")
    assert create_app("testing", weak).config["SECRET_KEY"] == "short"  # a test config may be weak
    with pytest.raises(ConfigError, match="^Refusing to start under the production config: "):
        create_app("production", weak.replace(FLASK_CONFIG="production"))


def test_error_reports_mask_every_secret_of_the_config_its_valueFrom_ones_too(tmp_path, monkeypatch):
    import json

    from project import error_reporting
    from project.configuration import load_config
    from tests.helpers import ROOT

    entries = json.loads((ROOT / "config" / "testing.json").read_text())
    secret = {"name": "MAIL_PASSWORD", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mail"}
    (tmp_path / "testing.json").write_text(json.dumps([*entries, secret]))
    config = load_config("testing", environ={"MAIL_PASSWORD": "mail-secret-1234"}, config_dir=tmp_path)
    seen = []
    monkeypatch.setattr(error_reporting, "register", lambda app, secrets: seen.append(tuple(secrets)))
    create_app("testing", config)
    assert len(seen) == 1 and "mail-secret-1234" in seen[0] and config["SECRET_KEY"] in seen[0]


class NumberQuery(ma.Schema):
    number = WholeNumber()


@pytest.mark.parametrize(("given", "read"), [("0", 0), ("42", 42), ("-7", -7), ("007", 7), (12, 12), (2**70, 2**70)])
def test_ascii_digits_and_json_integers_are_read(given, read):
    assert NumberQuery().load({"number": given}) == {"number": read}


@pytest.mark.parametrize(
    "given",
    [
        "١",  # Arabic-Indic one: int() reads every script's decimal digits
        "𑃴",  # Chakma four
        "２",  # fullwidth two
        "1_0",  # int() skips underscores between digits
        " 3",  # and whitespace around them
        "3\n",
        "+3",
        "",
        "-",
        "3.0",
        "0x10",
        2.5,  # a JSON float, which int() would cut to 2
        2.0,
        True,  # bool is an int in Python, never in JSON
    ],
)
def test_anything_else_int_would_read_is_not_a_valid_integer(given):
    with pytest.raises(ma.ValidationError) as info:
        NumberQuery().load({"number": given})
    assert info.value.messages == {"number": ["Not a valid integer."]}
