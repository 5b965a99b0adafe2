"""`inv db.dump` and `inv db.restore` against the run's server: the round trip, the file's safety, and every
refusal with its one sentence and nothing half-created."""

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

pytest.importorskip("invoke", reason="the task tests need invoke (requirements/development.txt)")

from devtools import lifecycle
from devtools.backups import dump as dumping
from devtools.backups import files
from devtools.backups.archive import NotADump, read_header
from devtools.databases import admin_cursor, connect, drop_database, owner_mark, table_counts
from devtools.target import resolve
from project.configuration import load_config
from project.revisions import code_head
from tests.helpers import OWNER_PASSWORD, ROOT, STRONG, inv, one_sentence, spawn, task_env

SOURCE = "backup_source"


def env_for(server, database=SOURCE, config="development"):
    """Environment pointing ``config`` at ``database`` on the run's server."""
    return {
        "APPLICATION_CONFIG": config,
        "POSTGRES_HOST": server.host,
        "POSTGRES_PORT": str(server.port),
        "POSTGRES_USER": server.user,
        "POSTGRES_MIGRATION_USER": server.user,
        "POSTGRES_DB": database,
    }


def databases(server) -> set[str]:
    with admin_cursor(env_for(server) | {"POSTGRES_PASSWORD": ""}) as cur:
        cur.execute("SELECT datname FROM pg_database")
        return {row[0] for row in cur.fetchall()}


@pytest.fixture
def source(postgresql_server):
    """A migrated database under the development config with a table of the test's own holding 500 rows."""
    environ = env_for(postgresql_server)
    target = resolve(load_config("development", environ=environ))
    lifecycle.init_database(target)
    with connect(target.admin()) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        cur.execute("INSERT INTO notes (body) SELECT 'note ' || n FROM generate_series(1, 500) AS n")
    conn.close()
    before = databases(postgresql_server)
    yield target
    with admin_cursor(target.admin()) as cur:
        for name in databases(postgresql_server) - before | {SOURCE}:
            drop_database(cur, name, mark=owner_mark("development"))


def rows(target, database):
    with connect(target.admin(), dbname=database) as conn, conn.cursor() as cur:
        cur.execute("SELECT id, body FROM notes ORDER BY id")
        found = cur.fetchall()
    conn.close()
    return found


def revision(target, database):
    with connect(target.admin(), dbname=database) as conn, conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        found = cur.fetchone()[0]
    conn.close()
    return found


def make_dump(server, tmp_path, name="source.dump"):
    path = tmp_path / name
    result = inv("db.dump", "--output", str(path), env=env_for(server))
    assert result.returncode == 0, result.stderr
    return path, result


def test_dump_and_restore_keep_every_row_and_the_revision(postgresql_server, source, tmp_path):
    path, result = make_dump(postgresql_server, tmp_path)
    assert f"Dumped database '{SOURCE}' (revision {code_head()})" in result.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["source.dump"], "a temporary file was left beside the dump"
    restored = inv("db.restore", str(path), "--database", "backup_copy", env=env_for(postgresql_server))
    assert restored.returncode == 0, restored.stderr
    assert "Restored into database 'backup_copy'; it is at revision" in restored.stdout
    assert "the code's head" in restored.stdout
    assert rows(source, "backup_copy") == rows(source, SOURCE) and len(rows(source, SOURCE)) == 500
    assert table_counts(source.admin(), "backup_copy") == table_counts(source.admin(), SOURCE)
    assert revision(source, "backup_copy") == revision(source, SOURCE) == code_head()
    with admin_cursor(source.admin()) as cur:  # marked as the project's: `inv db.reset` and drops may take it
        assert drop_database(cur, "backup_copy", mark=owner_mark("development"))


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        ("DELETE FROM alembic_version", "at revision none and the code's head is"),
        ("UPDATE alembic_version SET version_num = 'f00d'", "revision f00d, which this code does not know"),
    ],
)
def test_a_restore_off_the_code_head_says_what_to_do(postgresql_server, source, tmp_path, statement, says):
    with connect(source.admin()) as conn, conn.cursor() as cur:
        cur.execute(statement)
    conn.close()
    path, _ = make_dump(postgresql_server, tmp_path)
    result = inv("db.restore", str(path), "--database", "backup_old", env=env_for(postgresql_server))
    assert result.returncode == 0, result.stderr
    assert says in result.stdout
    if "none" in says:
        assert "run `POSTGRES_DB=backup_old inv db.upgrade --config development`" in result.stdout


def test_replace_swaps_a_database_the_project_made(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    with connect(source.admin()) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM notes WHERE id > 10")
    conn.close()
    refused = inv("db.restore", str(path), env=env_for(postgresql_server))
    assert refused.returncode == 2
    assert "already exists" in one_sentence(refused.stderr) and "--replace" in refused.stderr
    assert len(rows(source, SOURCE)) == 10
    replaced = inv("db.restore", str(path), "--replace", env=env_for(postgresql_server))
    assert replaced.returncode == 0, replaced.stderr
    assert "replacing the old one" in replaced.stdout
    assert len(rows(source, SOURCE)) == 500


def test_replace_is_refused_for_a_database_the_project_did_not_make(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    with admin_cursor(source.admin()) as cur:
        cur.execute("CREATE DATABASE backup_foreign")
    try:
        result = inv(
            "db.restore", str(path), "--database", "backup_foreign", "--replace", env=env_for(postgresql_server)
        )
        assert result.returncode == 2
        assert "Refusing to drop database 'backup_foreign'" in one_sentence(result.stderr)
        assert not [d for d in databases(postgresql_server) if "restoring" in d]
    finally:
        with admin_cursor(source.admin()) as cur:
            cur.execute("DROP DATABASE backup_foreign")


def test_production_is_never_restored_over(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    env = env_for(postgresql_server, config="production") | STRONG | {"POSTGRES_MIGRATION_PASSWORD": OWNER_PASSWORD}
    result = inv("db.restore", str(path), "--replace", env=env)
    assert result.returncode == 2
    assert "production data" in one_sentence(result.stderr)
    assert len(rows(source, SOURCE)) == 500


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"SELECT 1;\n", "is not a PostgreSQL dump in the custom format"),
        (b"PGDMP\x01\x0e", "ends inside its header"),
    ],
)
def test_a_file_that_is_not_a_dump_is_refused(postgresql_server, source, tmp_path, content, says):
    bad = tmp_path / "bad.dump"
    bad.write_bytes(content)
    before = databases(postgresql_server)
    result = inv("db.restore", str(bad), "--database", "backup_new", env=env_for(postgresql_server))
    assert result.returncode == 2
    assert says in one_sentence(result.stderr)
    assert databases(postgresql_server) == before


def test_a_truncated_dump_is_refused_and_leaves_no_database(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.dump"
    cut.write_bytes(data[: len(data) * 2 // 3])
    before = databases(postgresql_server)
    result = inv("db.restore", str(cut), "--database", "backup_cut", env=env_for(postgresql_server))
    assert result.returncode == 2
    assert "could not be restored (it may be truncated or damaged)" in one_sentence(result.stderr)
    assert databases(postgresql_server) == before


def test_a_dump_of_a_newer_major_is_refused(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    header = read_header(path)
    data = path.read_bytes()
    version = header.server_version.encode()
    newer = tmp_path / "newer.dump"
    newer.write_bytes(data.replace(version, b"99" + version[len(str(header.server_major)) :], 1))
    assert read_header(newer).server_major == 99
    before = databases(postgresql_server)
    result = inv("db.restore", str(newer), "--database", "backup_newer", env=env_for(postgresql_server))
    assert result.returncode == 2
    assert f"was dumped from PostgreSQL 99, newer than this server's {header.server_major}" in one_sentence(
        result.stderr
    )
    assert databases(postgresql_server) == before


def test_the_header_names_the_server_and_the_dump_program(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    header = read_header(path)
    assert header.database == SOURCE
    assert header.server_major == postgresql_server.cluster.version()
    assert header.dump_major >= header.server_major
    with pytest.raises(NotADump, match="is a directory"):
        read_header(tmp_path)


def test_dump_of_a_missing_database_or_an_unreachable_server_is_one_sentence(postgresql_server, tmp_path):
    missing = inv("db.dump", "--output", str(tmp_path / "x.dump"), env=env_for(postgresql_server, "backup_none"))
    assert missing.returncode == 2
    assert "Database 'backup_none' does not exist" in one_sentence(missing.stderr)
    from devtools.processes import free_port

    env = env_for(postgresql_server) | {"POSTGRES_PORT": str(free_port()), "POSTGRES_CONNECT_TIMEOUT": "2"}
    down = inv("db.dump", "--output", str(tmp_path / "x.dump"), env=env)
    assert down.returncode == 2
    assert "Cannot connect to PostgreSQL" in one_sentence(down.stderr)
    assert list(tmp_path.iterdir()) == []


def test_dump_never_overwrites_a_file(postgresql_server, source, tmp_path):
    path, _ = make_dump(postgresql_server, tmp_path)
    before = path.read_bytes()
    again = inv("db.dump", "--output", str(path), env=env_for(postgresql_server))
    assert again.returncode == 2
    assert "already exists" in one_sentence(again.stderr)
    assert path.read_bytes() == before


def test_default_dump_name_says_database_config_revision_and_time(source, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "BACKUP_DIR", tmp_path / "backups")
    report = dumping.dump(source)
    assert report.path.parent == tmp_path / "backups"
    name = report.path.name
    assert name.startswith(f"{SOURCE}-development-{code_head()}-") and name.endswith("Z.dump")
    assert stat.S_IMODE(report.path.parent.stat().st_mode) == 0o700


def wait_for_lock_wait(target, timeout=60):
    """Return once a pg_dump session waits for a lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin_cursor(target.admin()) as cur:
            cur.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND wait_event_type = 'Lock'"
            )
            if cur.fetchone()[0]:
                return
        time.sleep(0.1)
    raise AssertionError("pg_dump never waited for the lock")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_dump_stopped_midway_leaves_nothing_under_its_name(postgresql_server, source, tmp_path, sig):
    out = tmp_path / "out"
    out.mkdir()
    path = out / "stopped.dump"
    holder = connect(source.admin())
    try:
        with holder.cursor() as cur:  # pg_dump waits on this lock, after its file was opened
            cur.execute("LOCK TABLE notes IN ACCESS EXCLUSIVE MODE")
        process = spawn(
            [sys.executable, "-m", "invoke", "db.dump", "--output", str(path)],
            cwd=ROOT, env=task_env(env_for(postgresql_server)), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        wait_for_lock_wait(source)
        assert [p.name for p in out.iterdir() if p.name.endswith(".partial")], "the dump wrote no partial file"
        os.killpg(process.pid, sig)
        process.communicate(timeout=30)
    finally:
        holder.rollback()
        holder.close()
    assert not path.exists()
    if sig == signal.SIGINT:  # an interrupt cleans up; only a kill leaves the hidden partial file
        assert list(out.iterdir()) == []


def test_compose_restore_refuses_a_file_that_is_not_a_dump_before_asking_docker(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a dump\n")
    result = inv("compose.restore", str(bad), "--config", "production", env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.returncode == 2
    assert "is not a PostgreSQL dump in the custom format" in one_sentence(result.stderr)
