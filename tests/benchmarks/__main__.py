"""Run the benchmarks: ``nox -s bench`` (or ``python -m tests.benchmarks [NAME ...]``).

Each benchmark measures the project's way and a baseline in the same run and prints their ratio next to its
goal. Nothing here passes or fails: the figures are for reading.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Row:
    name: str
    ours: str
    baseline: str
    ratio: float
    goal: str
    note: str = ""


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextlib.contextmanager
def server_with_database(dbname: str = "bench", durable: bool = False):
    """A throwaway cluster with ``dbname`` migrated; yields (cluster, config).

    ``durable`` puts it on disk with PostgreSQL's stock settings, like the development cluster, instead of the
    test suite's memory-backed, fsync-off one.
    """
    from devtools import lifecycle
    from devtools.cluster import ephemeral_cluster
    from devtools.target import resolve, throwaway_config

    options = {"root": tempfile.gettempdir(), "settings": ()} if durable else {}
    with ephemeral_cluster(prefix="project-bench-pg-", **options) as cluster:
        config = throwaway_config(cluster, dbname)
        lifecycle.init_database(resolve(config))
        yield cluster, config


# -- tests ----------------------------------------------------------------------------------------


def bench_isolation() -> list[Row]:
    """Per-test isolation (a rolled-back transaction) against pytest-postgresql's per-test template clone."""
    import psycopg
    from pytest_postgresql.janitor import DatabaseJanitor
    from sqlalchemy import text

    from devtools.databases import admin_cursor
    from project import create_app
    from project.extensions import db
    from tests.helpers import isolated

    with server_with_database("bench_template") as (cluster, config):
        with admin_cursor(config) as cur:
            cur.execute("ALTER DATABASE bench_template WITH IS_TEMPLATE true")
        app = create_app("testing", overrides=config)

        def ours():
            with isolated(app):
                db.session.execute(text("SELECT 1"))
                db.session.commit()

        def clone():
            janitor = DatabaseJanitor(
                user=cluster.superuser,
                host=cluster.host,
                port=cluster.port,
                dbname="bench_clone",
                template_dbname="bench_template",
            )
            with (
                janitor,
                psycopg.connect(
                    host=cluster.host, port=cluster.port, user=cluster.superuser, dbname="bench_clone"
                ) as conn,
            ):
                conn.execute("SELECT 1")

        for _ in range(5):
            ours()
        clone()
        ours_times = [timed(ours) for _ in range(300)]
        clone_times = [timed(clone) for _ in range(30)]
        with app.app_context():
            db.engine.dispose()
    a, b = statistics.median(ours_times), statistics.median(clone_times)
    return [Row("per-test isolation / template clone", f"{a * 1000:.2f} ms", f"{b * 1000:.1f} ms", a / b, "<= 0.05")]


SEED_CONFTEST = """
import os
import pytest
from project import create_app
from project.extensions import db

@pytest.fixture
def app():
    app = create_app("testing", overrides={k: os.environ[k] for k in os.environ if k.startswith("POSTGRES_")})
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.drop_all()
        db.engine.dispose()

def test_index(app):
    assert app.test_client().get("/").status_code == 200
"""


def bench_first_result() -> list[Row]:
    """Time to the first test result against a seed-style flow (initdb, start, create database, create_all)."""
    from devtools.cluster import LocalCluster, free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "APPLICATION_CONFIG"))}
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]

    def ours():
        subprocess.run(
            [*pytest_cmd, "tests/test_api_users.py::test_index_greets"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )

    def seed():
        base = Path(tempfile.mkdtemp(prefix="project-bench-seed-"))
        cluster = LocalCluster(base, port=free_port())  # stock settings: fsync on, like a fresh install
        try:
            cluster._prepare_base_dir()
            cluster._run("initdb", "--pgdata", str(cluster.data_dir), "--username", "postgres", "--auth", "trust")
            cluster.start()
            subprocess.run(
                ["createdb", "-h", cluster.host, "-p", str(cluster.port), "-U", "postgres", "seed"],
                check=True,
                capture_output=True,
            )
            workdir = Path(tempfile.mkdtemp(prefix="project-bench-seed-tests-"))
            (workdir / "test_seed.py").write_text(SEED_CONFTEST)
            (workdir / "pytest.ini").write_text("[pytest]\n")
            seed_env = {
                **env,
                "PYTHONPATH": str(ROOT),
                "POSTGRES_HOST": cluster.host,
                "POSTGRES_PORT": str(cluster.port),
                "POSTGRES_USER": "postgres",
                "POSTGRES_DB": "seed",
            }
            subprocess.run([*pytest_cmd, "test_seed.py"], cwd=workdir, env=seed_env, check=True, capture_output=True)
            shutil.rmtree(workdir)
        finally:
            cluster.destroy()

    ours()
    a = statistics.median(timed(ours) for _ in range(3))
    b = statistics.median(timed(seed) for _ in range(3))
    return [Row("time to first test result / seed flow", f"{a:.2f} s", f"{b:.2f} s", a / b, "<= 0.6")]


def bench_install() -> list[Row]:
    """A fresh nox venv for the tests session: uv against pip (virtualenv backend)."""
    env = {**os.environ}

    def install(backend: str):
        envdir = tempfile.mkdtemp(prefix=f"project-bench-nox-{backend}-")
        try:
            subprocess.run(
                ["nox", "-s", "tests", "--install-only", "--force-venv-backend", backend, "--envdir", envdir],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
        finally:
            shutil.rmtree(envdir, ignore_errors=True)

    install("uv")  # warm both caches, so the comparison is of the installers, not the network
    install("virtualenv")
    a = statistics.median(timed(lambda: install("uv")) for _ in range(2))
    b = statistics.median(timed(lambda: install("virtualenv")) for _ in range(2))
    return [Row("nox fresh venv: uv / pip", f"{a:.1f} s", f"{b:.1f} s", a / b, "<= 0.4")]


# -- scenarios ------------------------------------------------------------------------------------


def bench_scenarios() -> list[Row]:
    """Scenario bulk load against ORM inserts one by one; reset against a full rebuild; memory of a big load.

    On a durable, on-disk cluster, as a developer's local cluster is.
    """
    from devtools import scenarios
    from devtools.target import resolve
    from project import create_app
    from project.extensions import db
    from project.models import User

    size = 100_000
    with server_with_database("bench_dev", durable=True) as (cluster, config):
        load_time = timed(lambda: scenarios.load(resolve(config), "users", size=size, force=True))
        reset_time = statistics.median(timed(lambda: scenarios.reset(resolve(config), "users")) for _ in range(5))
        rebuild_time = timed(lambda: scenarios.load(resolve(config), "users", size=size, force=True))

        sample = 5_000
        app = create_app("testing", overrides=config)
        with app.app_context():
            started = time.perf_counter()
            for i in range(sample):
                db.session.add(User(email=f"orm{i}@example.com", name=f"ORM {i}"))
                db.session.flush()
            db.session.rollback()
            orm_per_row = (time.perf_counter() - started) / sample
            db.engine.dispose()
        orm_time = orm_per_row * size

        small, big = _load_peak_rss(config, 10_000), _load_peak_rss(config, size)
    return [
        Row(
            "scenario load 100k / ORM one by one",
            f"{load_time:.2f} s",
            f"{orm_time:.1f} s (from {sample} rows)",
            load_time / orm_time,
            "<= 0.1",
        ),
        Row(
            "scenario.reset / full rebuild",
            f"{reset_time * 1000:.0f} ms",
            f"{rebuild_time:.2f} s",
            reset_time / rebuild_time,
            "<= 0.3",
        ),
        Row(
            "peak memory: load 100k / load 10k",
            f"{big / 1024:.0f} MiB",
            f"{small / 1024:.0f} MiB",
            big / small,
            "<= 1.2",
            "rows stream in batches",
        ),
    ]


def _load_peak_rss(config, size: int) -> int:
    """Load the users scenario in a child process; return its peak RSS in KiB."""
    code = textwrap.dedent(f"""
        import json, sys, resource
        from devtools import scenarios
        from devtools.target import resolve
        from project.configuration import load_config
        config = load_config("testing", environ={{}}).replace(**json.loads(sys.argv[1]))
        scenarios.load(resolve(config), "users", size={size}, force=True)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    overrides = {k: config[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB")}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(overrides)], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip().splitlines()[-1])


# -- load ---------------------------------------------------------------------------------------


def bench_load(seconds: float = 10.0) -> list[Row]:
    """gunicorn under the production config: GET /users/<id> against a hello-world app, same settings.

    Run with the config's own worker count (0: 2 x cores + 1, sized for a database on another host) and with
    2 workers, which suits a 2-core machine that also runs PostgreSQL and the load generator.
    """
    from tests.benchmarks.load import run_load
    from tests.helpers import gunicorn, production_env, request

    rows = []
    with server_with_database("bench_load") as (cluster, config):
        env = production_env(cluster, "bench_load")
        for workers, connection_counts in ((0, (16, 64)), (2, (16,))):
            label = "config workers" if workers == 0 else f"{workers} workers"
            with gunicorn(env, workers=workers) as server:
                body = json.dumps({"email": f"load{workers}@example.com", "name": "Load"}).encode()
                user_url = f"{server.url}/users/{json.loads(request(f'{server.url}/users', 'POST', body)[1])['id']}"
                ours = {c: (run_load(user_url, c, 2), run_load(user_url, c, seconds))[1] for c in connection_counts}
            with gunicorn(env, app="tests.benchmarks.hello_wsgi:app", workers=workers) as server:
                url = f"{server.url}/hello"
                base = {c: (run_load(url, c, 2), run_load(url, c, seconds))[1] for c in connection_counts}
            for c in connection_counts:
                a, b = ours[c], base[c]
                rows.append(
                    Row(
                        f"GET /users/<id> / hello rps, {c} conns, {label}",
                        f"{a.rps:.0f} rps",
                        f"{b.rps:.0f} rps",
                        a.rps / b.rps,
                        ">= 0.5",
                        f"{a.tool}; errors {a.errors}, non-2xx {a.non_2xx}, "
                        f"p99 {a.p99_ms:.1f} ms (hello {b.p99_ms:.1f} ms)",
                    )
                )
    return rows


BENCHMARKS = {
    "isolation": bench_isolation,
    "first-result": bench_first_result,
    "install": bench_install,
    "scenarios": bench_scenarios,
    "load": bench_load,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark '{unknown[0]}'; choose from {', '.join(BENCHMARKS)}")
    sys.path.insert(0, str(ROOT))
    rows: list[Row] = []
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += BENCHMARKS[name]()
    print_table(rows)
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def print_table(rows: list[Row]) -> None:
    headers = ("benchmark", "ours", "baseline", "ratio", "goal", "note")
    cells = [(r.name, r.ours, r.baseline, f"{r.ratio:.3f}", r.goal, r.note) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for c in cells:
        print(line.format(*c))


if __name__ == "__main__":
    sys.exit(main())
