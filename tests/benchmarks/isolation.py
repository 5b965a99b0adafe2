"""P1: per-test isolation (a rolled-back transaction) against pytest-postgresql's per-test template clone."""

from __future__ import annotations

import statistics

from tests.benchmarks.harness import Measurement, interleaved, ratio_spread, server_with_database


def clone_and_query(cluster, config) -> None:
    """Clone bench_template as pytest-postgresql's per-test fixture does, run one query in it, drop it; through
    the same socket (or TCP) as the rolled-back transaction."""
    import psycopg
    from pytest_postgresql.janitor import DatabaseJanitor

    janitor = DatabaseJanitor(
        user=cluster.superuser,
        host=config["POSTGRES_HOST"],
        port=cluster.port,
        dbname="bench_clone",
        template_dbname="bench_template",
    )
    with (
        janitor,
        psycopg.connect(
            host=config["POSTGRES_HOST"],
            port=cluster.port,
            user=cluster.superuser,
            dbname="bench_clone",
            passfile=str(cluster.passfile),
        ) as conn,
    ):
        conn.execute("SELECT 1")


def bench_isolation() -> list[Measurement]:
    """Per-test isolation (a rolled-back transaction) against pytest-postgresql's per-test template clone."""
    from sqlalchemy import text

    from devtools.databases import admin_cursor, create_database, owner_mark
    from project import create_app
    from project.extensions import db
    from tests.helpers import isolated

    with server_with_database("bench_template") as (cluster, config):
        with admin_cursor(config) as cur:
            # As the suite does: the run's database is one clone of the template, kept for the whole run.
            create_database(cur, "bench_run", template="bench_template", mark=owner_mark(config.name))
            cur.execute("ALTER DATABASE bench_template WITH IS_TEMPLATE true")
        app = create_app("testing", overrides=config.replace(POSTGRES_DB="bench_run"))
        with app.app_context():
            held = db.engine.connect()  # as the suite does: one connection, a transaction per test

        def ours():
            with isolated(app, held):
                db.session.execute(text("SELECT 1"))
                db.session.commit()

        for _ in range(5):
            ours()
        clone_and_query(cluster, config)
        # Ten of ours per clone, interleaved: ours is ~100 times shorter.
        ours_times, clone_times = interleaved(
            lambda: [ours() for _ in range(10)], lambda: clone_and_query(cluster, config), 30
        )
        ours_times = [t / 10 for t in ours_times]
        held.close()
        with app.app_context():
            db.engine.dispose()
    a, b = statistics.median(ours_times), statistics.median(clone_times)
    return [
        Measurement(
            "P1",
            "per-test isolation / template clone",
            f"{a * 1000:.2f} ms",
            f"{b * 1000:.1f} ms",
            a / b,
            "<= 0.012",
            spread=ratio_spread(ours_times, clone_times),
        )
    ]
