"""P2 and P2b: time to the first test result, against a seed-style flow and against a test without a database."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.benchmarks.harness import Measurement, interleaved, ratio_spread, timed
from tests.helpers import ROOT

SEED_TESTS = """
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
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


def clean_env() -> dict[str, str]:
    """Our environment without settings that would point a run at another database or config."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "APPLICATION_CONFIG"))}


def first_result(test_id: str):
    """Return a function that runs the suite's test ``test_id`` alone, failing loudly when it fails."""

    def run():
        done = subprocess.run([*PYTEST, test_id], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{test_id} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")

    return run


def seed_flow(pytest_step: list[float]) -> None:
    """Run a seed-style flow (initdb, start, createdb, pytest with create_all), appending its pytest step's time
    to ``pytest_step``."""
    from devtools.postgres.cluster import LocalCluster
    from devtools.processes import free_port

    base = Path(tempfile.mkdtemp(prefix="project-bench-seed-"))
    cluster = LocalCluster(base, port=free_port())  # stock settings: fsync on, like a fresh install
    try:
        cluster.make_base_dir()
        cluster.run_program("initdb", "--pgdata", str(cluster.data_dir), "--username", "postgres", "--auth", "trust")
        cluster.passfile.write_text("*:*:*:postgres:unused-with-trust\n")
        cluster.passfile.chmod(0o600)
        cluster.start()
        address = ["-h", cluster.host, "-p", str(cluster.port), "-U", "postgres"]
        subprocess.run(["createdb", *address, "seed"], check=True, capture_output=True)
        workdir = Path(tempfile.mkdtemp(prefix="project-bench-seed-tests-"))
        (workdir / "test_seed.py").write_text(SEED_TESTS)
        # The same plugins as ours: schemathesis is installed here for `nox -s contract`, not for pytest.
        (workdir / "pytest.ini").write_text("[pytest]\naddopts = -p no:schemathesis\n")
        env = {
            **clean_env(),
            "PYTHONPATH": str(ROOT),
            "POSTGRES_HOST": cluster.host,
            "POSTGRES_PORT": str(cluster.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": "seed",
        }
        command = [*PYTEST, "test_seed.py"]
        pytest_step.append(
            timed(lambda: subprocess.run(command, cwd=workdir, env=env, check=True, capture_output=True))
        )
        shutil.rmtree(workdir)
    finally:
        cluster.destroy()


def importing(modules: str):
    """Return a function that imports ``modules`` in a fresh interpreter."""
    return lambda: subprocess.run([sys.executable, "-c", f"import {modules}"], cwd=ROOT, env=clean_env(), check=True)


def bench_first_result() -> list[Measurement]:
    """Time to the first test result against a seed-style flow (initdb, start, create database, create_all)."""
    ours = first_result("tests/example/test_users_api.py::test_index_greets")  # needs the database
    no_database = first_result("tests/test_configuration.py::test_values_come_from_the_file")
    seed_pytest: list[float] = []  # the seed flow's own pytest run, after its server is ready
    ours()
    no_database()
    a, b = interleaved(ours, lambda: seed_flow(seed_pytest), 3)
    c, d = interleaved(ours, no_database, 3)
    common = "pytest, psycopg, devtools.databases"
    with_app, without = interleaved(importing(f"{common}, project.app"), importing(common), 5)
    app_imports = statistics.median(with_app) - statistics.median(without)
    pytest_step = statistics.median(seed_pytest)
    return [
        Measurement(
            "P2",
            "time to first test result / seed flow",
            f"{statistics.median(a):.2f} s",
            f"{statistics.median(b):.2f} s",
            statistics.median(a) / statistics.median(b),
            "<= 0.40",
            f"the seed flow's pytest step alone (its server ready, the same app and plugins) takes "
            f"{pytest_step:.2f} s, {pytest_step / statistics.median(b):.2f} of it",
            spread=ratio_spread(a, b),
        ),
        Measurement(
            "P2b",
            "first result of a database test / of a test without one",
            f"{statistics.median(c):.2f} s",
            f"{statistics.median(d):.2f} s",
            statistics.median(c) / statistics.median(d),
            "<= 1.3",
            f"same test setup: the server starts during collection in both; importing the app (Flask, SQLAlchemy, "
            f"Flask-Migrate), which only the database test does, takes {app_imports:.2f} s of the difference",
            spread=ratio_spread(c, d),
        ),
    ]
