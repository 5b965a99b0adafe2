"""The connection pool after its connections die: a ping only for idle connections, one retry for safe requests.

Connections are cut with ``pg_terminate_backend``, as a database restart or a failover cuts them, while the
server stays up, so each test sees exactly one dead connection and nothing else changing. The views and the
table are the tests' own (tests/domain), not the app's.
"""

import logging

import pytest

from devtools.databases import admin_cursor
from tests import domain
from tests.server import scratch_database

DBNAME = "pool_db"


# A database of this module's own, since these tests commit through the app's real pool.
pool_config = scratch_database("pool_db", migrated=True, scope="module")


@pytest.fixture
def pool_app(pool_config):
    """An app on a real pool of one connection, so 'the pooled connection' is always the same one."""
    from project import create_app
    from project.extensions import db

    overrides = {**pool_config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 1, "max_overflow": 0}}
    app = create_app("testing", overrides=overrides)
    domain.add_item_views(app)
    app.config["TESTING"] = False  # errors become responses, as in production
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def pings(pool_app, monkeypatch):
    """Count the liveness pings the app's pool sends."""
    from project.extensions import db

    with pool_app.app_context():
        dialect = db.engine.dialect
    sent = []
    real = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda dbapi_connection: sent.append(1) or real(dbapi_connection))
    return sent


def cut_app_connections(config) -> int:
    """Terminate every connection to the app's database but this one, as a restart would; return how many."""
    with admin_cursor(config) as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (DBNAME,),
        )
        return cur.fetchone()[0]


def make_item(client, label):
    response = client.post("/items", json={"label": label})
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_connection_used_a_moment_ago_is_not_pinged(pool_app, pings):
    client = pool_app.test_client()
    item_id = make_item(client, "warm@example.com")
    for _ in range(3):
        assert client.get(f"/items/{item_id}").status_code == 200
    assert pings == []


def test_an_idle_connection_is_pinged_and_replaced_when_dead(pool_app, pool_config, pings, caplog):
    client = pool_app.test_client()
    item_id = make_item(client, "idle@example.com")
    _age_pooled_connections(pool_app)
    assert cut_app_connections(pool_config) == 1
    with caplog.at_level(logging.INFO, logger=pool_app.logger.name):
        response = client.get(f"/items/{item_id}")
    assert response.status_code == 200, response.json
    assert pings == [1]
    assert not any("retrying" in r.getMessage() for r in caplog.records)  # the ping, not the retry, caught it


def test_an_idle_connection_that_is_alive_is_kept(pool_app, pool_config, pings):
    client = pool_app.test_client()
    item_id = make_item(client, "alive@example.com")
    _age_pooled_connections(pool_app)
    backends = _app_backends(pool_config)
    assert client.get(f"/items/{item_id}").status_code == 200
    assert pings == [1]
    assert _app_backends(pool_config) == backends


def _app_backends(config) -> set[int]:
    with admin_cursor(config) as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (DBNAME,))
        return {pid for (pid,) in cur.fetchall()}


def _age_pooled_connections(app) -> None:
    """Make every connection in the app's pool look idle since long ago."""
    from project.extensions import db

    with app.app_context():
        pool = db.engine.pool
        for record in list(pool._pool.queue):
            record.info["checked_in_at"] -= 3600


def test_a_safe_request_on_a_cut_connection_runs_again_on_a_new_one(pool_app, pool_config, pings, caplog):
    client = pool_app.test_client()
    item_id = make_item(client, "safe@example.com")
    assert cut_app_connections(pool_config) == 1
    with caplog.at_level(logging.INFO, logger=pool_app.logger.name):
        response = client.get(f"/items/{item_id}")
    assert response.status_code == 200, response.json
    assert response.json["label"] == "safe@example.com"
    assert pings == []  # the retry, not a ping, got past the dead connection
    assert any("retrying GET" in r.getMessage() for r in caplog.records)


def test_readyz_on_a_cut_connection_stays_ready(pool_app, pool_config):
    client = pool_app.test_client()
    assert client.get("/readyz").status_code == 200
    assert cut_app_connections(pool_config) == 1
    assert client.get("/readyz").status_code == 200


def test_an_unsafe_request_on_a_cut_connection_fails_once_and_is_not_repeated(pool_app, pool_config):
    from sqlalchemy import text

    from project.extensions import db

    client = pool_app.test_client()
    make_item(client, "first@example.com")
    assert cut_app_connections(pool_config) == 1
    response = client.post("/items", json={"label": "second@example.com"})
    assert response.status_code == 503
    assert response.json["message"].startswith("The database is unavailable")
    # The failure invalidated the pool: the very next request gets a new connection.
    make_item(client, "third@example.com")
    with pool_app.app_context():
        labels = set(db.session.scalars(text("SELECT label FROM items")))
    assert "second@example.com" not in labels and {"first@example.com", "third@example.com"} <= labels


@pytest.mark.parametrize(("marked", "runs", "status"), [(True, 1, 503), (False, 2, 200)])
def test_a_safe_view_marked_no_retry_is_not_run_twice(pool_app, pool_config, marked, runs, status):
    from sqlalchemy import text

    from project.app import no_retry
    from project.extensions import db

    calls = []

    def counting():
        calls.append(1)  # a write the view must not do twice
        return {"one": db.session.execute(text("SELECT 1")).scalar()}

    pool_app.add_url_rule("/counting", view_func=no_retry(counting) if marked else counting)
    client = pool_app.test_client()
    assert client.get("/counting").status_code == 200
    calls.clear()
    assert cut_app_connections(pool_config) == 1
    assert client.get("/counting").status_code == status
    assert len(calls) == runs
