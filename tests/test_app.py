"""The app factory, settings translation, and the guard that keeps tests on their own server."""

import pytest
from sqlalchemy.engine import make_url

from project import create_app
from project.configuration import ConfigError
from project.extensions import db
from project.settings import database_url, flask_settings
from tests.helpers import STRONG, config_for


def test_factory_uses_the_config_class(database):
    app = create_app("testing", overrides=database)
    assert app.testing and app.config["CONFIG_NAME"] == "testing"


def test_factory_rejects_an_unknown_config_class():
    with pytest.raises(ConfigError, match="FLASK_CONFIG 'staging' is not a config class; valid names: development"):
        create_app("staging")


def test_production_refuses_to_start_when_the_environment_asks_for_debug():
    from project.configuration import load_config

    environ = {"FLASK_DEBUG": "1", "SECRET_KEY": STRONG["SECRET_KEY"], "POSTGRES_PASSWORD": STRONG["POSTGRES_PASSWORD"]}
    config = load_config("production", environ=environ)
    with pytest.raises(ConfigError, match="FLASK_DEBUG is on"):
        create_app("production", overrides=config)


def test_production_app_is_never_in_debug_mode(database, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    assert create_app("production", overrides={**database, **STRONG}).debug is False


def test_flasks_own_debug_setting_from_a_config_entry_is_a_boolean_and_refused_in_production(database):
    assert create_app("testing", overrides={**database, "DEBUG": "false"}).debug is False  # a string would be truthy
    assert create_app("testing", overrides={**database, "DEBUG": "true"}).debug is True
    with pytest.raises(ConfigError, match="DEBUG is on: production must never run the debugger"):
        create_app("production", overrides={**database, **STRONG, "DEBUG": "true"})


def test_the_migrations_are_bound_to_the_apps_database_in_a_fresh_process(database, monkeypatch):
    from flask_migrate import Migrate

    import project.app

    monkeypatch.setattr(project.app, "migrate", Migrate())  # as unbound as on import, whatever ran before
    app = create_app("testing", overrides=database)
    assert app.extensions["migrate"].db is db
    assert app.extensions["migrate"].directory == str(app.config.get("MIGRATIONS_DIR") or project.app.MIGRATIONS_DIR)


def test_string_settings_become_typed_flask_settings():
    from project.settings import BaseConfig

    settings = flask_settings(
        BaseConfig,
        {
            "USERS_PER_PAGE_MAX": "7",
            "SESSION_COOKIE_SECURE": "true",
            "POSTGRES_HOST": "h",
            "POSTGRES_PORT": "1",
            "POSTGRES_USER": "u",
            "POSTGRES_PASSWORD": "p@ss:/",
            "POSTGRES_DB": "d",
            "POSTGRES_SSLMODE": "require",
        },
    )
    assert settings["USERS_PER_PAGE_MAX"] == 7 and settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg2://u:p%40ss%3A%2F@h:1/d"
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] == {"connect_timeout": 3, "sslmode": "require"}
    assert "POSTGRES_PASSWORD" not in settings


def test_database_url_needs_the_postgres_settings():
    with pytest.raises(ConfigError, match="POSTGRES_HOST, POSTGRES_PORT"):
        database_url({"POSTGRES_USER": "u", "POSTGRES_DB": "d"})


# What a developer's shell may hold: every one of these would point a test elsewhere or change what it checks.
SHELL = {
    "APPLICATION_CONFIG": "development",
    "FLASK_CONFIG": "production",
    "POSTGRES_HOST": "10.0.0.1",
    "POSTGRES_PORT": "15432",
    "POSTGRES_USER": "someone",
    "POSTGRES_DB": "app_dev",
    "POSTGRES_SSLMODE": "verify-full",
    "POSTGRES_CONNECT_TIMEOUT": "77",
    "DATABASE_ROLE": "migration",
    "SECRET_KEY": "from-the-shell",
    "LOG_LEVEL": "CRITICAL",
    "USERS_PER_PAGE_MAX": "3",
}


def test_the_testing_config_and_app_ignore_the_shell(monkeypatch, postgresql_server):
    for name, value in SHELL.items():
        monkeypatch.setenv(name, value)
    config = config_for(postgresql_server, "shell_db")  # read after the shell changed, as a new run would
    assert [e.name for e in config.entries if e.source == "environment"] == []
    socket = str(postgresql_server.cluster.socket_dir)  # the run's server is reached through its Unix socket
    assert (config["POSTGRES_HOST"], config["POSTGRES_PORT"]) == (socket, str(postgresql_server.port))
    app = create_app("testing", overrides=config)
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    expected = (socket, postgresql_server.port, "postgres", "shell_db")
    assert (url.query["host"], url.port, url.username, url.database) == expected
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["sslmode"] == "disable"
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["connect_timeout"] == 3
    assert app.config["SECRET_KEY"] == "testing-only-not-a-secret" and app.config["USERS_PER_PAGE_MAX"] == 100
    assert app.config["CONFIG_NAME"] == "testing" and app.testing


def test_the_session_app_uses_the_runs_own_server(postgresql_server, app):
    with app.app_context():
        url = db.engines[None].engine.url
    assert url.port == postgresql_server.port and url.database.startswith("app_test")


def test_security_headers_on_every_response(client):
    response = client.get("/nowhere")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Strict-Transport-Security" not in response.headers


def test_a_security_header_the_view_set_is_kept_once(database):
    app = create_app("testing", overrides=database)

    @app.get("/framed")
    def framed():
        return {}, 200, {"x-frame-options": "SAMEORIGIN"}

    response = app.test_client().get("/framed")
    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_production_adds_hsts_and_trusts_its_proxy(database):
    app = create_app("production", overrides={**database, **STRONG, "PROXY_FIX_X_FOR": "1"})
    seen = {}

    @app.get("/ip")
    def ip():
        from flask import request

        seen["addr"], seen["scheme"] = request.remote_addr, request.scheme
        return {}

    response = app.test_client().get("/ip", headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert seen == {"addr": "203.0.113.9", "scheme": "https"}


def test_body_over_the_limit_is_a_json_413(database):
    from flask import request

    from project import create_app

    app = create_app("testing", overrides=database)
    app.config["MAX_CONTENT_LENGTH"] = 100
    app.add_url_rule("/echo", "echo", lambda: {"length": len(request.get_data())}, methods=["POST"])
    assert app.test_client().post("/echo", data="x" * 100, content_type="application/json").json == {"length": 100}
    response = app.test_client().post("/echo", data="x" * 200, content_type="application/json")
    assert response.status_code == 413 and response.is_json


def test_time_stands_still_inside_a_test_but_the_clock_moves(db_session):
    """README "Tests": a test is one transaction, so now() is its start; clock_timestamp() is the statement's."""
    from sqlalchemy import text

    first = db_session.execute(text("SELECT now(), clock_timestamp()")).one()
    db_session.commit()  # a savepoint inside the test's transaction, which goes on
    db_session.execute(text("SELECT pg_sleep(0.01)"))
    second = db_session.execute(text("SELECT now(), clock_timestamp()")).one()
    assert second[0] == first[0] and second[1] > first[1]
