"""Production simulation without Docker: what `inv prod` prepares, and gunicorn serving it."""

import contextlib
import json
import subprocess

import psycopg2
import pytest

from devtools import prod as production
from devtools.databases import admin_cursor, connect, drop_database, owner_mark
from devtools.errors import DatabaseError
from project.configuration import ConfigError, load_config
from tests.helpers import STRONG_PASSWORD, STRONG_SECRET_KEY, config_for, request, spawn


def production_config(**environ):
    return load_config(
        "production", environ={"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, **environ}
    )


def test_prepare_refuses_a_weak_secret(postgresql_server):
    config = production_config(SECRET_KEY="too-short")
    with pytest.raises(ConfigError, match="Refusing to start under the 'production' config: SECRET_KEY is 9"):
        production.prepare(config, cluster=postgresql_server.cluster)


def test_prepared_gunicorn_serves_under_the_production_config(postgresql_server, tmp_path):
    from devtools.processes import free_port

    port = free_port()
    config = production_config(POSTGRES_DB="prodsim", GUNICORN_WORKERS="1")
    plan = production.prepare(config, port=port, cluster=postgresql_server.cluster)
    try:
        assert plan.env["POSTGRES_PORT"] == str(postgresql_server.port)
        assert plan.env["APPLICATION_CONFIG"] == "production"
        assert plan.env["POSTGRES_USER"] == "app" and plan.env["DATABASE_ROLE"] == "app"
        assert "POSTGRES_MIGRATION_PASSWORD" not in plan.env and "POSTGRES_PASSFILE" not in plan.env
        assert any("'prodsim' created and migrated" in m for m in plan.messages)
        assert plan.env["PROXY_FIX_X_FOR"] == "0"  # nothing sits in front of it
        log = tmp_path / "gunicorn.log"
        with log.open("wb") as out:
            process = spawn(plan.command, env=plan.env, stdout=out, stderr=subprocess.STDOUT)
        try:
            from tests.helpers import wait_until_serving

            wait_until_serving(f"http://127.0.0.1:{port}", process)
            # Readiness reads the schema's revision: a request that goes to the database, whatever the app's views.
            status, body = request(f"http://127.0.0.1:{port}/readyz", headers={"X-Forwarded-For": "6.6.6.6"})
            assert status == 200 and json.loads(body)["status"] == "ready"
            with admin_cursor(config_for(postgresql_server, "postgres")) as cur:
                cur.execute(
                    "SELECT s.ssl, r.rolsuper, r.rolcreatedb, r.rolcreaterole FROM pg_stat_activity a "
                    "JOIN pg_stat_ssl s USING (pid) JOIN pg_roles r ON r.rolname = a.usename "
                    "WHERE a.datname = 'prodsim' AND a.usename = 'app'"
                )
                rows = cur.fetchall()
            assert rows and all(row == (True, False, False, False) for row in rows)
        finally:
            process.terminate()
            process.wait(timeout=30)
        access = [json.loads(line) for line in log.read_text().splitlines() if "GET /readyz" in line]
        assert access and "6.6.6.6" not in log.read_text() and access[0]["remote_addr"] == "127.0.0.1"
    finally:
        # A database marked as production's is never dropped, not even here; the run's server goes with the run.
        with admin_cursor(config_for(postgresql_server, "postgres")) as cur, pytest.raises(DatabaseError):
            drop_database(cur, "prodsim", mark=owner_mark("production"))


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "CREATE TEMPORARY TABLE intruder (id int)",
        "CREATE SCHEMA intruder",
        "ALTER TABLE probe ADD COLUMN intruder int",
        "DROP TABLE probe",
        "CREATE ROLE intruder",
    ],
)
def test_the_app_role_cannot_change_the_schema(postgresql_server, statement):
    from tests.helpers import OWNER_PASSWORD, STRONG_PASSWORD, production_database

    production_database(postgresql_server.cluster, "roles_db")
    database = config_for(postgresql_server, "roles_db").replace(POSTGRES_PASSFILE="")
    owner = database.replace(POSTGRES_USER="app_owner", POSTGRES_PASSWORD=OWNER_PASSWORD)
    with contextlib.closing(connect(owner)) as conn, conn.cursor() as cur:  # a table a migration would make
        cur.execute("CREATE TABLE IF NOT EXISTS probe (id serial PRIMARY KEY, note text)")
        conn.commit()
    app = database.replace(POSTGRES_USER="app", POSTGRES_PASSWORD=STRONG_PASSWORD)
    with contextlib.closing(connect(app)) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO probe (note) VALUES ('a row') RETURNING id")
        assert cur.fetchone()[0] >= 1
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(statement)
