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


def test_each_problem_is_one_whole_sentence():
    weak = {"FLASK_DEBUG": "true", "SECRET_KEY": "", "SESSION_COOKIE_SECURE": "no", "POSTGRES_PASSWORD": ""}
    assert deploy_checks.problems(weak) == [
        'FLASK_DEBUG is on: production must never run the debugger; set it to "false".',
        f"SECRET_KEY is not set: export a random value ({deploy_checks.GENERATE_KEY}).",
        'SESSION_COOKIE_SECURE is off: session cookies would travel over plain HTTP; set it to "true".',
        "POSTGRES_PASSWORD is empty: the database role 'app' needs a password in production.",
        "POSTGRES_SSLMODE is not set: libpq may then talk to the database in plain text; use require, or "
        "verify-full with the provider's CA certificate (PGSSLROOTCERT).",
    ]
    assert deploy_checks.problems({**STRONG, "SECRET_KEY": "example-" + STRONG["SECRET_KEY"][:30]}) == [
        "SECRET_KEY looks like a placeholder, not a random value; generate a new one."
    ]


@pytest.mark.parametrize("on", [True, "true", "On", "1"])
def test_flasks_own_debug_setting_counts_as_on_typed_or_as_a_config_entry(on):
    assert deploy_checks.problems({**STRONG, "DEBUG": on}) == [
        'DEBUG is on: production must never run the debugger; set it to "false".'
    ]


def test_debug_off_typed_or_as_a_config_entry_passes():
    assert deploy_checks.problems({**STRONG, "DEBUG": False}) == []
    assert deploy_checks.problems({**STRONG, "DEBUG": "false"}) == []
    without = {k: v for k, v in STRONG.items() if k != "FLASK_DEBUG"}
    assert deploy_checks.problems(without) == []


def test_a_secret_key_of_exactly_the_minimum_length_passes():
    key = STRONG["SECRET_KEY"][: deploy_checks.SECRET_KEY_MIN_LENGTH]
    assert deploy_checks.problems({**STRONG, "SECRET_KEY": key}) == []


@pytest.mark.parametrize("word", ["example", "CHANGEME", "Secret"])
def test_a_placeholder_word_in_any_case_is_named(word):
    found = deploy_checks.problems({**STRONG, "SECRET_KEY": f"{word}-{STRONG['SECRET_KEY'][:30]}"})
    assert found == ["SECRET_KEY looks like a placeholder, not a random value; generate a new one."]


def test_estimated_bits_is_the_lower_of_entropy_and_compressed_size():
    assert deploy_checks.estimated_bits("") == 0.0
    assert deploy_checks.estimated_bits("abbabaabbaababbaabab") == 20.0  # 20 characters of 1 bit each
    assert deploy_checks.estimated_bits("abcdefghij" * 4) == 104  # a repeated pattern compresses to 13 bytes


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


def test_a_key_of_exactly_the_minimum_randomness_passes_and_less_is_measured():
    key = "aolpabpidbngrfhngjljckhbfgegqmbk"  # estimated at exactly SECRET_KEY_MIN_BITS
    assert deploy_checks.estimated_bits(key) == deploy_checks.SECRET_KEY_MIN_BITS
    assert deploy_checks.problems({**STRONG, "SECRET_KEY": key}) == []
    assert deploy_checks.problems({**STRONG, "SECRET_KEY": "abcdefghij" * 4}) == [
        f"SECRET_KEY has about 104 bits of randomness; use at least 128 ({deploy_checks.GENERATE_KEY})."
    ]


def test_the_password_checked_is_the_one_of_the_role_this_process_connects_as():
    weak_owner = {**STRONG, "DATABASE_ROLE": "migration", "POSTGRES_MIGRATION_PASSWORD": "short"}
    assert deploy_checks.problems(weak_owner) == [
        f"POSTGRES_MIGRATION_PASSWORD is too weak (5 characters); use at least 16 random ones "
        f"({deploy_checks.GENERATE_KEY})."
    ]
    assert deploy_checks.problems({**STRONG, "POSTGRES_PASSWORD": ""}) == [
        "POSTGRES_PASSWORD is empty: the database role 'app' needs a password in production."
    ]
    # A role the loader would refuse is checked against the app's password rather than not at all.
    assert deploy_checks.problems({**STRONG, "DATABASE_ROLE": "other", "POSTGRES_PASSWORD": ""}) == [
        "POSTGRES_PASSWORD is empty: the database role 'other' needs a password in production."
    ]


def test_a_password_of_the_minimum_length_and_variety_passes():
    assert deploy_checks.problems({**STRONG, "POSTGRES_PASSWORD": "abcdefgh" * 2}) == []  # 16 long, 8 different
    assert "too weak" in deploy_checks.problems({**STRONG, "POSTGRES_PASSWORD": "abcdefg" * 3})[0]  # 7 different
