"""What `inv prod` hands gunicorn, rule by rule: the local cluster's address, loopback binds, no trusted proxy, the
owner's password and the passfile kept back, and the command it runs (gunicorn itself runs in test_production)."""

import json
import sys

import pytest

from devtools import prod as production
from project import deploy_checks
from project.configuration import ConfigError, load_config
from tests.helpers import ROOT, STRONG_PASSWORD, STRONG_SECRET_KEY


def production_config(**environ):
    return load_config(
        "production", environ={"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, **environ}
    )


@pytest.fixture
def prepared(postgresql_server):
    """A prepared plan with the defaults, and the config it came from. Made per test (the database is migrated
    once): a test that reads it is then one mutation testing links to ``prepare``."""
    config = production_config(POSTGRES_DB="prodguard", METRICS_BIND="0.0.0.0:9464", POSTGRES_PASSFILE="/elsewhere")
    return config, production.prepare(config, cluster=postgresql_server.cluster)


def test_gunicorn_connects_to_the_local_cluster_as_the_app_role(prepared, postgresql_server):
    _, plan = prepared
    cluster = postgresql_server.cluster
    assert (plan.env["POSTGRES_HOST"], plan.env["POSTGRES_PORT"]) == (cluster.host, str(cluster.port))
    assert (plan.env["POSTGRES_USER"], plan.env["DATABASE_ROLE"]) == ("app", "app")
    assert plan.target.cluster is cluster and plan.config is plan.target.config
    assert plan.config["POSTGRES_HOST"] == cluster.host


def test_gunicorn_and_its_metrics_listen_on_loopback_at_the_default_ports(prepared):
    _, plan = prepared
    assert plan.env["GUNICORN_BIND"] == "127.0.0.1:8000"
    assert plan.env["METRICS_BIND"] == "127.0.0.1:9464"
    assert plan.env["PROXY_FIX_X_FOR"] == "0"  # nothing in front of it: no client picks the logged address


def test_the_address_and_ports_can_be_chosen(postgresql_server):
    config = production_config(POSTGRES_DB="prodguard_ports", METRICS_BIND="0.0.0.0:9464")
    plan = production.prepare(config, host="127.0.0.2", port=8123, cluster=postgresql_server.cluster, metrics_port=9555)
    assert (plan.env["GUNICORN_BIND"], plan.env["METRICS_BIND"]) == ("127.0.0.2:8123", "127.0.0.1:9555")


def test_without_a_metrics_endpoint_none_is_added(postgresql_server):
    config = production_config(POSTGRES_DB="prodguard_nometrics", METRICS_BIND="")
    plan = production.prepare(config, cluster=postgresql_server.cluster)
    assert plan.env.get("METRICS_BIND", "") == ""


def test_gunicorn_never_sees_the_owners_password_or_the_passfile(prepared):
    _, plan = prepared
    assert production.GUNICORN_NEVER_SEES == ("POSTGRES_MIGRATION_PASSWORD", "POSTGRES_PASSFILE")
    assert plan.config["POSTGRES_PASSFILE"] == "/elsewhere"  # the task keeps it
    for name in production.GUNICORN_NEVER_SEES:
        assert name not in plan.env
    assert plan.env["POSTGRES_PASSWORD"] == STRONG_PASSWORD  # the app role's own, which it needs


def test_the_owners_password_is_generated_strong_unless_given(prepared, postgresql_server):
    _, plan = prepared
    generated = plan.config["POSTGRES_MIGRATION_PASSWORD"]
    assert len(generated) == 43  # secrets.token_urlsafe(32): 32 random bytes, 43 characters of base64url
    given = "Owner-" + STRONG_PASSWORD
    config = production_config(POSTGRES_DB="prodguard_owner", POSTGRES_MIGRATION_PASSWORD=given)
    again = production.prepare(config, cluster=postgresql_server.cluster)
    assert again.config["POSTGRES_MIGRATION_PASSWORD"] == given
    other = production.prepare(production_config(POSTGRES_DB="prodguard"), cluster=postgresql_server.cluster)
    assert other.config["POSTGRES_MIGRATION_PASSWORD"] not in (generated, given)


def test_the_command_is_this_pythons_gunicorn_with_the_projects_config(prepared):
    _, plan = prepared
    root = production.ROOT
    assert (root / "wsgi.py").is_file() and (root / "gunicorn.conf.py").is_file()
    expected = [sys.executable, "-m", "gunicorn", "--config", str(root / "gunicorn.conf.py"), "--chdir", str(root)]
    assert plan.command == [*expected, "wsgi:app"]


def test_the_messages_say_what_was_prepared_and_nothing_empty(postgresql_server):
    config = production_config(POSTGRES_DB="prodguard_messages")
    plan = production.prepare(config, cluster=postgresql_server.cluster)
    assert any("'prodguard_messages' created and migrated" in m for m in plan.messages), plan.messages
    assert all(plan.messages)


def test_binaries_without_tls_are_refused_with_how_to_get_them(postgresql_server, monkeypatch):
    """The production config holds libpq to TLS (the checks refuse other sslmodes): without it nothing connects."""
    cluster = postgresql_server.cluster
    monkeypatch.setattr(type(cluster), "supports_tls", lambda self: False)
    from devtools.postgres import wheels

    with pytest.raises(ConfigError) as refused:
        production.prepare(production_config(POSTGRES_DB="prodguard_plain"), cluster=cluster)
    assert str(refused.value) == (
        f"The 'production' config connects over TLS, and these PostgreSQL binaries ({cluster.bindir}) were built "
        f"without it: {wheels.tls_advice()}."
    )
    assert "python -m devtools.postgres.wheels" in str(refused.value)
    assert refused.value.exit_code == 2


def test_a_config_with_a_problem_is_refused_naming_the_config_and_each_problem(postgresql_server):
    config = production_config(SECRET_KEY="short", FLASK_DEBUG="1")
    with pytest.raises(ConfigError) as refused:
        production.prepare(config, cluster=postgresql_server.cluster)
    message = str(refused.value)
    said = deploy_checks.problems(config)
    assert len(said) == 2 and "FLASK_DEBUG is on" in said[0] and "SECRET_KEY is 5 characters long" in said[1]
    assert message == "Refusing to start under the 'production' config: " + " ".join(said)


def test_a_secret_written_into_the_config_file_is_refused(postgresql_server, tmp_path):
    entries = json.loads((ROOT / "config" / "production.json").read_text())
    (tmp_path / "production.json").write_text(json.dumps([*entries, {"name": "API_TOKEN", "value": "abc123"}]))
    config = load_config(
        "production",
        environ={"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, "POSTGRES_DB": "prodguard"},
        config_dir=tmp_path,
    )
    with pytest.raises(ConfigError) as refused:
        production.prepare(config, cluster=postgresql_server.cluster)
    assert str(refused.value) == (
        "Refusing to start under the 'production' config: "
        f"{tmp_path / 'production.json'}: API_TOKEN looks like a secret but is stored as a literal 'value'; use "
        "'valueFrom'."
    )
