"""Test fixtures: a throwaway PostgreSQL server per run, the real migrations, a transaction per test.

The server's machinery lives in ``tests/server.py``; this file only wires it into pytest's fixtures and hooks.

Lifecycle (per run, or per worker under ``pytest -n``):

1. ``postgresql_server`` starts a new cluster in a temporary directory on a free port (as the ``postgres``
   OS user when run by root) and deletes it at the end, even after Ctrl-C or a failing fixture.
   The server comes with the real migrations already applied to two databases: one kept pristine as the
   template, and the run's database. Its data directory is copied from a cache in the user's own cache
   directory, keyed by the migrations' content, the PostgreSQL binaries and the server settings; when no run
   with the same key made one before, the migrations are applied now and the result is cached for the next run.
2. ``postgresql_template`` (pytest-postgresql's noproc factory) copies the pristine one into its template, for
   the tests that want a database of their own (``postgresql``).
3. ``database`` is the run's database; ``app`` is bound to it.
4. Every test that uses ``app`` (or ``client``, ``db_session``, ...) runs inside a transaction that is rolled
   back at its end, so tests are isolated even when the code under test commits.

Settings come from ``config/testing.json`` read with an empty environment, and the database address is
always the throwaway server's: no variable in the shell can point a test at another database.

Starting from a scenario: mark a test ``@pytest.mark.scenario("users", size=20, seed=1)`` and the scenario's
own code fills the test's transaction before the test runs (see scenarios/README.md).

The run's database has the app's schema, for the app's tests (tests/example/ and yours). The tooling's tests use
a domain of their own instead (tests/domain: ``domain_migrations``, ``domain_scenarios`` and the scratch
databases of ``tests.server.scratch_database``), so they pass whatever the app's models become.
"""

from __future__ import annotations

import codecs
import contextlib
import locale
import os
import random
import signal
import sys
from concurrent.futures import Future, wait

import pytest
from pytest_postgresql import factories

from devtools.postgres.throwaway import reap_throwaways
from devtools.processes import stop_like_ctrl_c
from tests.helpers import config_for, isolated, stop_started
from tests.server import RUN_DATABASE, SERVER_PREFIX, TEST_DATABASE, serving, start_in_background, start_server

# Flask and SQLAlchemy are imported inside the fixtures, after the server has started starting in the background:
# their import time then overlaps with initdb instead of preceding it.

early_server = pytest.StashKey[Future]()


def pytest_sessionstart(session):
    """Start the run's server in the background while pytest collects, so the first result comes sooner."""
    config = session.config
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # A run stopped with SIGTERM (a CI time-out, `kill`) cleans up like one stopped with Ctrl-C.
        signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    if not hasattr(config, "workerinput"):
        # Servers of earlier runs that were killed (SIGKILL, a lost machine) go now; live runs' servers stay.
        reap_throwaways(SERVER_PREFIX)
    if config.getoption("numprocesses", None) and not hasattr(config, "workerinput"):
        return  # the xdist controller runs no test; each worker starts its own server
    if os.environ.get("MUTANT_UNDER_TEST"):
        return  # a mutation run's test selection often needs no server: start one only when a test asks for it
    config.stash[early_server] = start_in_background()


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    """Run the first test only once the run's server has started (or failed to).

    The start runs in a thread of this process and reads what tests patch for their own length (LocalCluster's
    methods, shutil.which, tempfile.tempdir, ...): a test that ran while a slow start (from an empty cache) was
    still going could make it fail, or skip a step, and leave the run's tests without their server."""
    future = session.config.stash.get(early_server, None)
    if future is not None and not session.config.option.collectonly:
        if not future.done():
            import project.app  # noqa: F401  the app's imports overlap the rest of the start, as in postgresql_server
        wait([future])  # a failed start is the postgresql_server fixture's to report, to the tests that need it
    return (yield)


def pytest_sessionfinish(session):
    """Stop what the tests started and delete the server, even when no test asked for it or the run was
    interrupted."""
    stop_started()
    future = session.config.stash.get(early_server, None)
    if future is not None:
        with contextlib.suppress(Exception):
            future.result().destroy()


@pytest.fixture(scope="session")
def postgresql_server(pytestconfig):
    """A PostgreSQL server that exists only for this run."""
    future = pytestconfig.stash.get(early_server, None)
    import project.app  # noqa: F401  the app's imports (Flask, SQLAlchemy, ...) overlap the server's start

    with serving(future.result() if future is not None else start_server()) as server:
        yield server


postgresql_template = factories.postgresql_noproc(depends_on="postgresql_server", dbname=TEST_DATABASE)
# A fresh clone of the template per test: slower than a rolled-back transaction (see `nox -s bench`),
# for the rare test that needs a database of its own.
postgresql = factories.postgresql("postgresql_template")


@pytest.fixture(scope="session")
def database(postgresql_server):
    """The run's database, migrated, on the run's own server (which is deleted with it); yields its config."""
    return config_for(postgresql_server, RUN_DATABASE)


@pytest.fixture(scope="session")
def _session_app(database):
    from project import create_app
    from project.extensions import db

    app = create_app("testing", overrides=database)
    with app.app_context():
        # One connection for the run's tests: each test is a transaction on it, rolled back at its end.
        connection = db.engine.connect()
    app.extensions["test_connection"] = connection
    yield app
    connection.close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(_session_app, request):
    """The app, bound to the run's database, inside a transaction rolled back after the test."""
    with isolated(_session_app, _session_app.extensions["test_connection"]) as connection:
        marker = request.node.get_closest_marker("scenario")
        if marker:
            from devtools.scenarios import catalogue

            name = marker.args[0]
            size = marker.kwargs.get("size", catalogue.DEFAULT_SIZE)
            seed = marker.kwargs.get("seed", catalogue.DEFAULT_SEED)
            catalogue.get(name).fill(connection, size=size, rng=random.Random(seed))
        yield _session_app


@pytest.fixture(scope="session")
def domain_migrations(tmp_path_factory):
    """A migrations directory with the project's alembic set-up and the tests' own revisions (tests/domain)."""
    from tests import domain

    return domain.migrations_dir(tmp_path_factory.mktemp("domain") / "migrations")


@pytest.fixture
def domain_scenarios():
    """Make the tests' own scenarios (tests/domain/scenarios) the ones the scenario commands know.

    A patch of its own rather than the ``monkeypatch`` fixture's, so that a test's own ``monkeypatch`` patches
    are still undone before its scratch databases are dropped."""
    from devtools.scenarios import catalogue
    from tests import domain

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalogue, "SCENARIO_DIR", domain.SCENARIOS)
        yield domain.SCENARIOS


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A runner for the app's Click commands (``flask db ...``)."""
    return app.test_cli_runner()


@pytest.fixture
def db_session(app):
    """The SQLAlchemy session, inside the test's transaction."""
    from project.extensions import db

    with app.app_context():
        yield db.session


def pytest_configure(config):
    config.addinivalue_line("markers", "scenario(name, size=..., seed=...): start the test from a scenario's data")


@pytest.fixture
def ascii_locale():
    """Text files default to ASCII, as on a machine whose locale is not UTF-8 (``LC_ALL=C`` with Python's locale
    coercion turned off, an ISO-8859 locale): what the project reads or writes must say its encoding."""
    if sys.flags.utf8_mode:
        pytest.skip("Python runs in UTF-8 mode here (PYTHONUTF8=1): its text files are UTF-8 whatever the locale")
    saved = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        assert codecs.lookup(locale.getpreferredencoding(False)).name == "ascii"
        yield
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
