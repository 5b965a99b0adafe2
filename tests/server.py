"""The test suite's throwaway PostgreSQL server: started while pytest collects, migrated from a cache, and the
scratch databases a test makes on it.

``tests/conftest.py`` wires these into fixtures and hooks; tests import from here, never from the conftest.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import pytest
from pytest_postgresql.executors import NoopExecutor

from devtools import migrations
from devtools.identity import prefix
from devtools.postgres.cache import Preparation
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.throwaway import start_throwaway
from project.configuration import Config, load_config
from tests.helpers import ROOT, config_for

TEST_DATABASE = "app_test"
MIGRATED_DATABASE = "app_test_migrated"
RUN_DATABASE = "app_test_run"
SERVER_PREFIX = prefix("tests-pg")  # <project name>-tests-pg-: the directory says whose server it is


def migrate_databases(cluster: LocalCluster, migrations_dir: Path | None = None) -> None:
    """Create MIGRATED_DATABASE on ``cluster`` with the migrations (the project's, or those in ``migrations_dir``)
    applied, and RUN_DATABASE as its copy, in a process of its own (tests/migrated.py says why)."""
    values = dict(cluster.connection())
    if migrations_dir is not None:
        values["MIGRATIONS_DIR"] = str(migrations_dir)
    job = json.dumps({"values": values, "migrated": MIGRATED_DATABASE, "run": RUN_DATABASE})
    done = subprocess.run(
        [sys.executable, "-m", "tests.migrated"], input=job, capture_output=True, text=True, cwd=ROOT, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"Making the migrated test databases failed:\n{done.stderr[-4000:]}")


# The code that makes the migrated databases, besides the migrations: a change to it (their marks, how they are
# created, the constraint naming convention) makes them anew rather than reusing a cached copy.
PREPARATION_CODE = (
    "tests/migrated.py",
    "devtools/databases.py",
    "devtools/lifecycle.py",
    "devtools/migrations.py",
    "project/extensions.py",
    "project/models.py",
)


def preparation_key(migrations_dir: Path | None = None, root: Path = ROOT) -> str:
    """Return the cache key of the migrated databases: the migrations' digest and the code that applies them."""
    hashed = hashlib.sha256(migrations.digest(migrations_dir).encode())
    for name in PREPARATION_CODE:
        hashed.update(f"\0{name}\0".encode() + (root / name).read_bytes())
    return hashed.hexdigest()


def start_server(migrations_dir: Path | None = None) -> LocalCluster:
    """Start the run's throwaway server, of the PostgreSQL major version config/testing.json declares, with the
    migrated databases in it (from the cache when the migrations have not changed since they were made)."""
    major = load_config("testing", environ={}).get("POSTGRES_MAJOR_VERSION")
    migrated = Preparation(
        name=f"{MIGRATED_DATABASE} and {RUN_DATABASE}",
        key=preparation_key(migrations_dir),
        run=functools.partial(migrate_databases, migrations_dir=migrations_dir),
    )
    return start_throwaway(prefix=SERVER_PREFIX, major=int(major) if major else None, preparation=migrated)


def start_in_background() -> Future[LocalCluster]:
    """Start the run's server in a thread of its own; return the future of the started server."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgresql")
    future = executor.submit(start_server)
    executor.shutdown(wait=False)
    return future


class Server(NoopExecutor):
    """The address of a running server, for pytest-postgresql's ``depends_on``: its template is the migrated
    database, which pytest-postgresql copies into its own template."""

    template_dbname = MIGRATED_DATABASE

    def __init__(self, cluster: LocalCluster):
        super().__init__(host=cluster.host, port=cluster.port, user=cluster.superuser, options="", dbname=TEST_DATABASE)
        self.cluster = cluster


@contextlib.contextmanager
def serving(cluster: LocalCluster):
    """Yield ``cluster`` as a :class:`Server`, with libpq reading its superuser's password file, and delete the
    cluster at the end."""
    try:
        with libpq_passfile(cluster):
            yield Server(cluster)
    finally:
        cluster.destroy()


def libpq_passfile(cluster: LocalCluster):
    """Point PGPASSFILE at ``cluster``'s password file while the block runs, for libpq clients (psycopg 2 and 3,
    the programs the tests start) that take no passfile argument; the previous value comes back after."""
    return mock.patch.dict(os.environ, {"PGPASSFILE": str(cluster.passfile)})


def scratch_config(server: Server, dbname: str, config_name: str = "testing") -> Config:
    """Return config ``config_name`` pointed at ``dbname`` on the run's server, ignoring the shell."""
    if config_name == "testing":
        return config_for(server, dbname)
    return load_config(config_name, environ=server_environment(server, dbname))


def server_environment(server: Server, dbname: str) -> dict[str, str]:
    """Return the environment variables that point a config at ``dbname`` on the run's server."""
    return {
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_DB": dbname,
    }


def drop_scratch(config: Config) -> None:
    """Drop the database ``config`` names and the scenarios loaded from it, the project's and the tests' own
    (tests/domain), after any background refill."""
    from devtools.databases import admin_cursor, drop_database, owner_mark
    from devtools.scenarios import catalogue, runner
    from devtools.target import resolve
    from tests import domain

    target = resolve(config)
    for directory in (ROOT / "scenarios", domain.SCENARIOS):
        with mock.patch.object(catalogue, "SCENARIO_DIR", directory):
            for name in catalogue.available():
                runner.drop(target, name)
    with admin_cursor(config) as cur:
        drop_database(cur, config["POSTGRES_DB"], mark=owner_mark(config.name))


def short_name(node) -> str:
    """Return a name for test ``node`` short enough to leave room for a scenario's suffixes in a database name,
    and unique among the run's tests."""
    digest = hashlib.sha1(node.nodeid.encode()).hexdigest()[:6]
    return f"{node.name[:20].lower().rstrip('_')}_{digest}"


def scratch_database(
    name: str, *, config: str = "testing", migrated: bool = False, scope: str = "function", domain: bool = True
):
    """Return a fixture yielding config ``config`` pointed at database ``name`` on the run's server (``{test}``
    in ``name`` becomes the test's name), created and migrated first when ``migrated``; the database and the
    scenarios loaded from it are dropped when the fixture ends.

    With ``domain`` (the default) the config's migrations are the tests' own (tests/domain); ``domain=False``
    leaves the project's, for tests whose code under test reads the config afresh (tasks run in-process)."""

    @pytest.fixture(scope=scope)
    def scratch(postgresql_server, request):
        from devtools import lifecycle
        from devtools.target import resolve

        dbname = name.format(test=short_name(request.node))
        values = scratch_config(postgresql_server, dbname, config)
        if domain:
            values = values.replace(MIGRATIONS_DIR=str(request.getfixturevalue("domain_migrations")))
        try:
            if migrated:
                lifecycle.init_database(resolve(values))
            yield values
        finally:
            drop_scratch(values)

    return scratch
