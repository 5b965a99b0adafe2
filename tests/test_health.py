"""Health and readiness, database outages, and graceful shutdown, against real servers."""

import json
import shutil
import signal
import threading
import time

import pytest

from devtools import migrations
from devtools.databases import admin_cursor
from devtools.postgres.throwaway import throwaway_cluster
from tests import domain
from tests.helpers import gunicorn, production_database, production_env, request
from tests.server import scratch_database


def test_healthz_needs_no_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_reports_the_migration_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "revision": migrations.head_revision()}


# With the tests' own migrations (tests/domain): readiness compares the app's revisions with the database's.
migrated_db = scratch_database("ready_{test}", migrated=True)


def test_readyz_is_503_when_the_schema_is_behind(migrated_db):
    from project import create_app

    migrations.downgrade(migrated_db, "base")
    response = create_app("testing", overrides=migrated_db).test_client().get("/readyz")
    assert response.status_code == 503
    assert "schema is at revision none" in response.json["message"]


# The real app plus a view that reads from the database (tests/slow_wsgi.py), the app's own views aside.
PROBE_APP = "tests.slow_wsgi:app"


@pytest.fixture(scope="module")
def own_cluster():
    """A server this module may stop and start without disturbing the other tests."""
    with throwaway_cluster(prefix="project-outage-pg-") as cluster:
        production_database(cluster, "outage")
        yield cluster


def test_outage_gives_quick_503s_and_the_same_worker_recovers(own_cluster):
    with gunicorn(production_env(own_cluster, "outage"), app=PROBE_APP) as server:
        probe_url = f"{server.url}/probe"
        status, body = request(probe_url)
        assert status == 200 and json.loads(body) == {"database": "outage"}
        workers = server.workers()

        own_cluster.stop()
        try:
            status, body = request(probe_url)
            assert status == 503 and json.loads(body)["message"].startswith("The database is unavailable")
            assert request(f"{server.url}/readyz")[0] == 503
            assert request(f"{server.url}/healthz")[0] == 200
        finally:
            own_cluster.start()

        assert request(probe_url)[0] == 200
        assert request(f"{server.url}/readyz")[0] == 200
        assert server.workers() == workers


def test_first_request_after_a_database_restart_succeeds_on_the_same_worker(own_cluster):
    with gunicorn(production_env(own_cluster, "outage"), app=PROBE_APP) as server:
        assert request(f"{server.url}/readyz")[0] == 200  # the worker's pool now holds one open connection
        workers = server.workers()
        # No request while the server is down, so nothing has told the pool that its connection died: the ping
        # of an idle connection or, when the restart took under a second, the retry of a safe request stands
        # between that dead connection and the next request.
        own_cluster.stop()
        own_cluster.start()
        status, body = request(f"{server.url}/probe")
        assert status == 200, body
        assert server.workers() == workers


def test_sigterm_lets_in_flight_requests_finish(own_cluster):
    with gunicorn(production_env(own_cluster, "outage"), app="tests.slow_wsgi:app") as server:
        answers = []
        worker = threading.Thread(target=lambda: answers.append(request(f"{server.url}/slow")))
        worker.start()
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        worker.join(timeout=30)
        assert server.process.wait(timeout=30) == 0
    assert answers and answers[0][0] == 200 and json.loads(answers[0][1]) == {"finished": True}


def test_readyz_stays_ready_when_a_newer_release_migrated_the_schema(migrated_db):
    from project import create_app

    with admin_cursor(migrated_db, dbname=migrated_db["POSTGRES_DB"]) as cur:
        cur.execute("UPDATE alembic_version SET version_num = 'f00dfacecafe'")  # a revision this code lacks
    response = create_app("testing", overrides=migrated_db).test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ready",
        "revision": domain.HEAD,
        "database_revision": "f00dfacecafe",
    }


def test_readyz_compares_with_the_apps_own_migrations_read_once(database, tmp_path, monkeypatch):
    from project import create_app
    from project.api import health
    from project.extensions import db
    from project.revisions import MIGRATIONS_DIR

    migrations_dir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations_dir, ignore=shutil.ignore_patterns("__pycache__"))
    for revision in (migrations_dir / "versions").glob("*.py"):
        revision.unlink()
    read, code_head = [], health.code_head
    monkeypatch.setattr(health, "code_head", lambda directory: read.append(directory) or code_head(directory))
    app = create_app("testing", overrides={**database, "MIGRATIONS_DIR": str(migrations_dir)})
    try:
        # Code without revisions sees the database's as one it does not know: a newer release's, so ready.
        response = app.test_client().get("/readyz")
        assert response.status_code == 200 and response.json["revision"] is None
        assert response.json["database_revision"] == migrations.head_revision()
        assert app.test_client().get("/readyz").status_code == 200
        assert read == [str(migrations_dir)]
    finally:
        with app.app_context():
            db.engine.dispose()
