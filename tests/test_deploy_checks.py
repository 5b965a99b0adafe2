"""Deployment checks: weak production settings are named one by one, and the app refuses to start on them."""

import json

import pytest

from project import create_app, deploy_checks
from project.configuration import ConfigError, load_config
from tests.helpers import STRONG


def test_strong_settings_pass():
    assert deploy_checks.problems(STRONG) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"FLASK_DEBUG": "true"}, "FLASK_DEBUG is on"),
        ({"SECRET_KEY": ""}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is 5 characters long"),
        ({"SECRET_KEY": "change-me-change-me-change-me-change-me"}, "looks like a placeholder"),
        ({"SECRET_KEY": "a" * 40}, "looks like a placeholder"),
        ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE is off"),
        ({"POSTGRES_PASSWORD": ""}, "POSTGRES_PASSWORD is empty"),
        ({"POSTGRES_PASSWORD": "x"}, "POSTGRES_PASSWORD is too weak (1 characters)"),
        ({"POSTGRES_PASSWORD": "aaaaaaaaaaaaaaaaaaaa"}, "POSTGRES_PASSWORD is too weak (20 characters)"),
        ({"SECRET_KEY": "abcdefghij" * 4}, "bits of randomness"),
        ({"SECRET_KEY": STRONG["SECRET_KEY"][:31]}, "SECRET_KEY is 31 characters long"),
        ({"POSTGRES_SSLMODE": "prefer"}, "POSTGRES_SSLMODE is 'prefer'"),
        ({"POSTGRES_SSLMODE": ""}, "POSTGRES_SSLMODE is not set"),
        ({"POSTGRES_SSLMODE": "disable"}, "in plain text"),
    ],
)
def test_each_weakness_is_named(change, expected):
    found = deploy_checks.problems({**STRONG, **change})
    assert len(found) == 1 and expected in found[0]


def test_secret_looking_literal_in_the_file_is_named(tmp_path):
    (tmp_path / "prod.json").write_text(
        json.dumps([{"name": "API_TOKEN", "value": "abc"}, {"name": "HOST", "value": "x"}])
    )
    config = load_config("prod", environ={}, config_dir=tmp_path)
    assert deploy_checks.literal_secrets(config) == [
        f"{tmp_path / 'prod.json'}: API_TOKEN looks like a secret but is stored as a literal 'value'; use 'valueFrom'."
    ]


def test_shipped_production_file_has_no_literal_secret():
    assert deploy_checks.literal_secrets(load_config("production", environ={}, require_secrets=False)) == []


def test_development_config_fails_the_checks():
    found = deploy_checks.problems(load_config("development", environ={}))
    assert any("FLASK_DEBUG" in p for p in found) and any("SECRET_KEY" in p for p in found)


def test_app_refuses_to_start_under_production_with_a_weak_secret(database):
    with pytest.raises(ConfigError, match="Refusing to start under the production config: SECRET_KEY is 5"):
        create_app("production", overrides={**database, **STRONG, "SECRET_KEY": "short"})


def test_app_starts_under_production_with_strong_settings(database):
    app = create_app("production", overrides={**database, **STRONG})
    assert not app.debug and app.config["SESSION_COOKIE_SECURE"] is True
