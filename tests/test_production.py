"""Production simulation without Docker: what `inv prod` prepares, and gunicorn serving it."""

import json
import subprocess

import pytest

from devtools import prod as production
from devtools.databases import admin_cursor, drop_database
from project.configuration import ConfigError, load_config
from tests.helpers import STRONG_PASSWORD, STRONG_SECRET_KEY, request


def production_config(**environ):
    return load_config(
        "production", environ={"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, **environ}
    )


def test_prepare_refuses_a_weak_secret(postgresql_server):
    config = production_config(SECRET_KEY="too-short")
    with pytest.raises(ConfigError, match="Refusing to start under the 'production' config: SECRET_KEY is 9"):
        production.prepare(config, cluster=postgresql_server.cluster)


def test_prepared_gunicorn_serves_users_under_the_production_config(postgresql_server):
    from devtools.cluster import free_port

    port = free_port()
    config = production_config(POSTGRES_USER=postgresql_server.user, POSTGRES_DB="prodsim", GUNICORN_WORKERS="1")
    plan = production.prepare(config, port=port, cluster=postgresql_server.cluster)
    try:
        assert plan.env["POSTGRES_PORT"] == str(postgresql_server.port)
        assert plan.env["APPLICATION_CONFIG"] == "production"
        assert any("'prodsim' created and migrated" in m for m in plan.messages)
        process = subprocess.Popen(plan.command, env=plan.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            from tests.helpers import wait_until_serving

            wait_until_serving(f"http://127.0.0.1:{port}", process)
            status, body = request(f"http://127.0.0.1:{port}/users")
            assert status == 200 and json.loads(body)["users"] == []
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        with admin_cursor(config.replace(POSTGRES_PORT=str(postgresql_server.port), POSTGRES_HOST="127.0.0.1")) as cur:
            drop_database(cur, "prodsim")
