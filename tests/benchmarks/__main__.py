"""Run the benchmarks: ``nox -s bench`` (or ``python -m tests.benchmarks [NAME ...] [--json FILE]``).

Each benchmark measures the project's way and a baseline in the same run, interleaved (A, B, A, B, ...), and
prints their ratio with its spread next to its goal. Nothing here passes or fails: the figures are for reading,
and ``--json`` writes them for comparing runs over time.
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
    id: str
    name: str
    ours: str
    baseline: str
    ratio: float
    goal: str
    note: str = ""
    spread: str = ""

    def met(self) -> bool:
        """Tell whether the ratio meets the goal ("<= 0.4" or ">= 0.45")."""
        op, _, value = self.goal.partition(" ")
        return self.ratio <= float(value) if op == "<=" else self.ratio >= float(value)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(ours: Callable[[], object], baseline: Callable[[], object], rounds: int) -> tuple[list, list]:
    """Time ``ours`` and ``baseline`` alternately, ``rounds`` times each, so drifts in the machine's speed hit both."""
    a, b = [], []
    for _ in range(rounds):
        a.append(timed(ours))
        b.append(timed(baseline))
    return a, b


def ratio_spread(a: list[float], b: list[float]) -> str:
    """Return the range of the per-round ratios, which says how much to trust the median's."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    return f"{ratios[0]:.3f}-{ratios[-1]:.3f}"


@contextlib.contextmanager
def server_with_database(dbname: str = "bench", durable: bool = False):
    """A throwaway cluster with ``dbname`` migrated; yields (cluster, config).

    ``durable`` puts it on disk with PostgreSQL's stock settings, like the development cluster, instead of the
    test suite's memory-backed, fsync-off one.
    """
    from devtools import lifecycle
    from devtools.postgres.throwaway import throwaway_cluster
    from devtools.target import resolve, throwaway_config

    options = {"root": tempfile.gettempdir(), "settings": ()} if durable else {}
    with throwaway_cluster(prefix="project-bench-pg-", **options) as cluster:
        config = throwaway_config(cluster, dbname)
        lifecycle.init_database(resolve(config))
        saved = os.environ.get("PGPASSFILE")
        os.environ["PGPASSFILE"] = str(cluster.passfile)  # for libpq clients that take no passfile argument
        try:
            yield cluster, config
        finally:
            os.environ.pop("PGPASSFILE") if saved is None else os.environ.update(PGPASSFILE=saved)


# -- tests ----------------------------------------------------------------------------------------


def bench_isolation() -> list[Row]:
    """Per-test isolation (a rolled-back transaction) against pytest-postgresql's per-test template clone."""
    import psycopg
    from pytest_postgresql.janitor import DatabaseJanitor
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

        def clone():  # through the same socket (or TCP) as ours
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

        for _ in range(5):
            ours()
        clone()
        # Ten of ours per clone, interleaved: ours is ~100 times shorter.
        ours_times, clone_times = interleaved(lambda: [ours() for _ in range(10)], clone, 30)
        ours_times = [t / 10 for t in ours_times]
        held.close()
        with app.app_context():
            db.engine.dispose()
    a, b = statistics.median(ours_times), statistics.median(clone_times)
    return [
        Row(
            "P1",
            "per-test isolation / template clone",
            f"{a * 1000:.2f} ms",
            f"{b * 1000:.1f} ms",
            a / b,
            "<= 0.012",
            spread=ratio_spread(ours_times, clone_times),
        )
    ]


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
    from devtools.postgres.cluster import LocalCluster
    from devtools.processes import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "APPLICATION_CONFIG"))}
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]

    def first_result(test_id: str):
        def run():
            done = subprocess.run([*pytest_cmd, test_id], cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{test_id} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")

        return run

    ours = first_result("tests/example/test_users_api.py::test_index_greets")  # needs the database
    no_database = first_result("tests/test_configuration.py::test_values_come_from_the_file")

    seed_pytest: list[float] = []  # the seed flow's own pytest run, after its server is ready

    def seed():
        base = Path(tempfile.mkdtemp(prefix="project-bench-seed-"))
        cluster = LocalCluster(base, port=free_port())  # stock settings: fsync on, like a fresh install
        try:
            cluster.make_base_dir()
            cluster.run_program(
                "initdb", "--pgdata", str(cluster.data_dir), "--username", "postgres", "--auth", "trust"
            )
            (cluster.passfile).write_text("*:*:*:postgres:unused-with-trust\n")
            cluster.passfile.chmod(0o600)
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
            seed_pytest.append(
                timed(
                    lambda: subprocess.run(
                        [*pytest_cmd, "test_seed.py"], cwd=workdir, env=seed_env, check=True, capture_output=True
                    )
                )
            )
            shutil.rmtree(workdir)
        finally:
            cluster.destroy()

    def importing(modules: str):
        return lambda: subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=ROOT, env=env, check=True)

    ours()
    no_database()
    a, b = interleaved(ours, seed, 3)
    c, d = interleaved(ours, no_database, 3)
    common = "pytest, psycopg, devtools.databases"
    with_app, without = interleaved(importing(f"{common}, project.app"), importing(common), 5)
    app_imports = statistics.median(with_app) - statistics.median(without)
    return [
        Row(
            "P2",
            "time to first test result / seed flow",
            f"{statistics.median(a):.2f} s",
            f"{statistics.median(b):.2f} s",
            statistics.median(a) / statistics.median(b),
            "<= 0.40",
            f"the seed flow's pytest step alone (its server ready, the same app and plugins) takes "
            f"{statistics.median(seed_pytest):.2f} s, {statistics.median(seed_pytest) / statistics.median(b):.2f} "
            "of it",
            spread=ratio_spread(a, b),
        ),
        Row(
            "P2b",
            "first result of a database test / of a test without one",
            f"{statistics.median(c):.2f} s",
            f"{statistics.median(d):.2f} s",
            statistics.median(c) / statistics.median(d),
            "<= 1.3",
            f"same conftest: the server starts during collection in both; importing the app (Flask, SQLAlchemy, "
            f"Flask-Migrate), which only the database test does, takes {app_imports:.2f} s of the difference",
            spread=ratio_spread(c, d),
        ),
    ]


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
    return [Row("I1", "nox fresh venv: uv / pip", f"{a:.1f} s", f"{b:.1f} s", a / b, "<= 0.4")]


# -- scenarios ------------------------------------------------------------------------------------


def bench_scenarios() -> list[Row]:
    """Scenario load against SQLAlchemy's bulk insert() of the same rows; reset against a full rebuild; memory.

    On a durable, on-disk cluster, as a developer's local cluster is.
    """
    import random

    from sqlalchemy import insert

    from devtools import lifecycle
    from devtools import scenarios as scenario_package
    from devtools.databases import admin_cursor, drop_database, owner_mark
    from devtools.scenarios import catalogue, runner
    from devtools.target import resolve
    from project import create_app
    from project.extensions import db
    from project.models import User

    size = 100_000
    users = catalogue.get("users").module
    with server_with_database("bench_dev", durable=True) as (cluster, config):
        target = resolve(config)

        def load():
            runner.load(target, "users", size=size, force=True)

        def bulk_insert():
            bulk = target.with_database("bench_bulk")
            lifecycle.init_database(bulk)
            app = create_app("testing", overrides=bulk.config)
            with app.app_context():
                # Making the rows counts on both sides: the scenario's load makes them too.
                started = time.perf_counter()
                rows = [{"email": e, "name": n, "created_at": c} for e, n, c in users.rows(size, random.Random(1))]
                with db.engine.begin() as connection:
                    connection.execute(insert(User), rows)
                elapsed = time.perf_counter() - started
                db.engine.dispose()
            with admin_cursor(target.admin()) as cur:
                drop_database(cur, "bench_bulk", mark=owner_mark(config.name))
            return elapsed

        load()
        loads, bulks = [], []
        # copy_rows as the scenario module imports it when each load runs it afresh.
        with (
            time_spent_in(scenario_package, ("copy_rows",)) as spent,
            time_spent_in(runner, ("create_database", "drop_database", "upgrade"), spent),
        ):
            for _ in range(3):
                loads.append(timed(load))
                bulks.append(bulk_insert())

        def settled(step):
            # Each timed step starts after the background copy that the last load or reset began has finished, as
            # it has when a developer resets after trying some queries.
            def run():
                runner.wait_for_refill(target, "users")
                started = time.perf_counter()
                step()
                return time.perf_counter() - started

            return run

        resets, rebuilds, refills, starts = [], [], [], []
        for _ in range(3):
            with time_spent_in(runner, ("start_refill",)) as spent_starting:
                resets.append(settled(lambda: runner.reset(target, "users"))())
            starts.append(spent_starting.get("start_refill", 0.0))
            refills.append(timed(lambda: runner.wait_for_refill(target, "users")))
            rebuilds.append(settled(load)())

        def connect_once():
            with admin_cursor(target.admin()) as cur:
                cur.execute("SELECT 1")

        connecting = statistics.median(timed(connect_once) for _ in range(5))
        small, big = _load_peak_rss(config, 10_000), _load_peak_rss(config, size)
    a, b = statistics.median(loads), statistics.median(bulks)
    c, d = statistics.median(resets), statistics.median(rebuilds)
    return [
        Row(
            "P5",
            "scenario load 100k / SQLAlchemy bulk insert() of the same rows",
            f"{a:.2f} s",
            f"{b:.2f} s",
            a / b,
            "<= 0.4",
            "ours creates, migrates, fills and saves the database, the baseline only makes the rows and inserts them; "
            + ", ".join(f"{name} {seconds / 3:.2f} s" for name, seconds in spent.items())
            + " per load",
            spread=ratio_spread(loads, bulks),
        ),
        Row(
            "P6",
            "scenario.reset / full rebuild",
            f"{c * 1000:.0f} ms",
            f"{d:.2f} s",
            c / d,
            "<= 0.15",
            f"stretch <= 0.02 {'met' if c / d <= 0.02 else 'not met'}: of a reset, starting the background copy takes "
            f"{statistics.median(starts) * 1000:.0f} ms (a fork, and its connection and lock), connecting "
            f"{connecting * 1000:.0f} ms; the copy is made in the background in {statistics.median(refills):.2f} s",
            spread=ratio_spread(resets, rebuilds),
        ),
        Row(
            "M1",
            "peak memory: load 100k / load 10k",
            f"{big / 1024:.0f} MiB",
            f"{small / 1024:.0f} MiB",
            big / small,
            "<= 1.2",
            "rows stream in batches",
        ),
    ]


@contextlib.contextmanager
def time_spent_in(module, names: tuple[str, ...], spent: dict[str, float] | None = None):
    """Add up the time spent in ``module``'s functions ``names`` while the block runs; yield the sums."""
    spent = {} if spent is None else spent
    originals = {name: getattr(module, name) for name in names}

    def timing(name, function):
        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return timed_call

    for name, function in originals.items():
        setattr(module, name, timing(name, function))
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def _load_peak_rss(config, size: int) -> int:
    """Load the users scenario in a child process; return its peak RSS in KiB."""
    code = textwrap.dedent(f"""
        import json, sys, resource
        from devtools.scenarios import runner
        from devtools.target import resolve
        from project.configuration import load_config
        config = load_config("testing", environ={{}}).replace(**json.loads(sys.argv[1]))
        runner.load(resolve(config), "users", size={size}, force=True)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    overrides = {
        k: config[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSFILE")
    }
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(overrides)], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip().splitlines()[-1])


# -- load ---------------------------------------------------------------------------------------


def bench_load(seconds: float = 5.0, rounds: int = 4) -> list[Row]:
    """gunicorn under the production config (TLS to the database, the app role): GET /users/<id> against a
    hello-world app and against a raw pooled psycopg2 endpoint, same gunicorn settings, runs interleaved."""
    from tests.benchmarks.load import run_load
    from tests.helpers import gunicorn, production_database, production_env, request

    results: dict[str, list] = {"ours": [], "hello": [], "raw": []}
    with server_with_database("bench_load") as (cluster, _):
        production_database(cluster, "bench_load_prod")
        env = production_env(cluster, "bench_load_prod")
        with (
            gunicorn(env, workers=2) as ours,
            gunicorn(env, app="tests.benchmarks.hello_wsgi:app", workers=2) as hello,
            gunicorn(env, app="tests.benchmarks.raw_wsgi:app", workers=2) as raw,
        ):
            body = json.dumps({"email": "load@example.com", "name": "Load"}).encode()
            user_id = json.loads(request(f"{ours.url}/users", "POST", body)[1])["id"]
            urls = {
                "ours": f"{ours.url}/users/{user_id}",
                "hello": f"{hello.url}/hello",
                "raw": f"{raw.url}/users/{user_id}",
            }
            for url in urls.values():
                run_load(url, 16, 1)  # warm every worker's pool
            for _ in range(rounds):
                for name, url in urls.items():
                    results[name].append(run_load(url, 16, seconds))
        inprocess = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tests.benchmarks.inprocess", str(user_id)],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT)},
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
    where = (
        f"in-process per request: ours {inprocess['ours']:.0f} us (its read alone {inprocess['ours_read']:.0f} us), "
        f"raw {inprocess['raw']:.0f} us, hello {inprocess['hello']:.0f} us"
    )
    rows = []
    for row_id, baseline, goal in (("P3", "hello", ">= 0.45"), ("P3b", "raw", ">= 0.75")):
        a = statistics.median(r.rps for r in results["ours"])
        b = statistics.median(r.rps for r in results[baseline])
        errors = sum(r.errors + r.non_2xx for r in results["ours"] + results[baseline])
        rows.append(
            Row(
                row_id,
                f"GET /users/<id> / {'hello' if baseline == 'hello' else 'raw psycopg2 endpoint'} rps, 2 workers",
                f"{a:.0f} rps",
                f"{b:.0f} rps",
                a / b,
                goal,
                f"{results['ours'][0].tool}, 16 conns; errors+non-2xx {errors}; "
                f"p99 {results['ours'][0].p99_ms:.1f} ms ({baseline} {results[baseline][0].p99_ms:.1f} ms); {where}",
                spread=ratio_spread([r.rps for r in results["ours"]], [r.rps for r in results[baseline]]),
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
    parser.add_argument("--json", metavar="FILE", help="also write the rows to FILE as JSON")
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
    if args.json:
        document = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": [{**r.__dict__, "met": r.met()} for r in rows],
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return 0


def print_table(rows: list[Row]) -> None:
    headers = ("id", "benchmark", "ours", "baseline", "ratio", "spread", "goal", "met", "note")
    cells = [
        (r.id, r.name, r.ours, r.baseline, f"{r.ratio:.3f}", r.spread, r.goal, "yes" if r.met() else "NO", r.note)
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for c in cells:
        print(line.format(*c))


if __name__ == "__main__":
    sys.exit(main())
