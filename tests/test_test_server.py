"""The test suite's own server: it comes with the migrations applied, from a cache keyed by their content."""

import os
import shutil
import subprocess
import sys

import pytest

from devtools.databases import admin_cursor
from devtools.identity import project_name
from devtools.migrations import head_revision
from devtools.postgres import cache as data_cache
from devtools.postgres.throwaway import start_throwaway
from tests import domain
from tests.helpers import ROOT, config_for
from tests.server import MIGRATED_DATABASE, PREPARATION_CODE, RUN_DATABASE, preparation_key, start_server

NEW_MIGRATION = '''"""add notes"""
import sqlalchemy as sa
from alembic import op

revision = "b0b0cafe0001"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("notes")
'''


def tables(cluster, dbname: str) -> set[str]:
    with admin_cursor(config_for(cluster, dbname), dbname=dbname) as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in cur.fetchall()}


def prepared_entries(cache) -> list:
    return [e for e in (cache / f"{project_name()}-postgres").iterdir() if (e / data_cache.PREPARED_FILE).exists()]


def test_the_server_comes_migrated_from_the_cache_until_a_migration_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    migrations_dir = domain.migrations_dir(tmp_path / "migrations")  # the tests' own (tests/domain)

    first = start_server(migrations_dir)
    try:
        assert not first.prepared  # nothing cached yet: migrated now
        assert tables(first, RUN_DATABASE) == tables(first, MIGRATED_DATABASE) == {"alembic_version", "items"}
    finally:
        first.destroy()
    second = start_server(migrations_dir)
    try:
        assert second.prepared
        assert tables(second, RUN_DATABASE) == {"alembic_version", "items"}
    finally:
        second.destroy()

    (migrations_dir / "versions" / "b0b0cafe0001_add_notes.py").write_text(
        NEW_MIGRATION.format(down=head_revision(str(migrations_dir)))
    )
    monkeypatch.setattr(data_cache, "KEEP_PREPARED", 1)
    third = start_server(migrations_dir)
    try:
        assert not third.prepared  # the changed migrations are a different key
        assert tables(third, RUN_DATABASE) == tables(third, MIGRATED_DATABASE) == {"alembic_version", "items", "notes"}
    finally:
        third.destroy()
    assert len(prepared_entries(cache)) == 1  # the older migrations' copy was pruned
    fourth = start_server(migrations_dir)
    try:
        assert fourth.prepared and "notes" in tables(fourth, RUN_DATABASE)
    finally:
        fourth.destroy()


def test_making_the_databases_imports_nothing_into_the_process_that_collects_tests(tmp_path):
    # The server is prepared in a background thread while pytest's main thread imports the test modules; alembic
    # or Flask imported in both threads at once can fail half-way, so the migrations run in a process of their own.
    code = (
        "import sys; from tests.server import start_server; "
        "cluster = start_server(); cluster.destroy(); "
        "print(not cluster.prepared, sorted(m for m in ('alembic', 'flask', 'sqlalchemy') if m in sys.modules))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}  # nothing cached: the databases are made
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "True []"


@pytest.mark.parametrize("changed", PREPARATION_CODE)
def test_the_cache_key_changes_with_the_code_that_prepares_the_databases(tmp_path, changed):
    for name in PREPARATION_CODE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    before = preparation_key(root=tmp_path)
    assert before == preparation_key(root=ROOT)
    with open(tmp_path / changed, "a") as handle:
        handle.write("\n# changed\n")
    assert preparation_key(root=tmp_path) != before


# A run's server whose start takes a while (as one from an empty cache does) and starts nothing.
SLOW_START = """
import threading
from concurrent.futures import Future

import tests.conftest


class Started:
    def destroy(self):
        pass


def slow_start():
    future = Future()
    threading.Timer(3, future.set_result, [Started()]).start()
    return future


tests.conftest.start_in_background = slow_start
"""

FIRST_TEST = """
from tests.conftest import early_server


def test_first(pytestconfig):
    assert pytestconfig.stash[early_server].done(), "a test ran while the run's server was still starting"
"""


def test_no_test_runs_while_the_runs_server_is_starting(tmp_path):
    # A test that patches what the start reads (LocalCluster's methods, shutil.which, tempfile.tempdir) must not
    # overlap it: the start runs in a thread of the test process.
    (tmp_path / "slow_start.py").write_text(SLOW_START)
    (tmp_path / "test_first.py").write_text(FIRST_TEST)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    command = [sys.executable, "-m", "pytest", "-p", "slow_start", "-p", "tests.conftest", "-p", "no:cacheprovider"]
    done = subprocess.run([*command, "-q", "test_first.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout


def test_a_running_servers_data_directory_is_never_cached(tmp_path, monkeypatch):
    # A stop skipped (a test had patched LocalCluster.is_running while the run's server started) once left the
    # copy of a running server in the cache: torn, and with a postmaster.pid naming that server while it lives.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = data_cache.DataDirectoryCache(data_cache.cache_home())
    migrated = data_cache.Preparation(name="running copy", key="running copy", run=lambda cluster: None)
    cluster = start_throwaway(prefix=f"{project_name()}-cache-pg-")
    try:
        entry = cache.entry(cluster, migrated)
        cache.save(cluster, migrated)
        assert not entry.exists()
        cluster.stop()
        cache.save(cluster, migrated)
        assert (entry / "data" / "PG_VERSION").is_file() and not (entry / "data" / "postmaster.pid").exists()
    finally:
        cluster.destroy()
