"""Scenarios: built from empty with the real migrations, reproducible, resettable, and never touching other data."""

import os
import random
import threading
import time
from datetime import timedelta

import psycopg2
import psycopg2.errors
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from devtools.databases import (
    admin_cursor,
    connect,
    create_database,
    database_exists,
    database_mark,
    drop_database,
    table_counts,
)
from devtools.errors import DatabaseError, ScenarioError
from devtools.scenarios import background, catalogue, copying, runner, spares
from devtools.scenarios.naming import ScenarioNames
from devtools.target import resolve
from scenarios import users as users_scenario
from tests.server import scratch_database

scn_dev = scratch_database("scn_dev", migrated=True)


@pytest.fixture
def dev_config(scn_dev):
    """A stand-in development database on the run's server, holding one user."""
    with connect(scn_dev) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (email, name) VALUES ('keep@example.com', 'Keep')")
    return scn_dev


def emails(config, name):
    with connect(config, dbname=ScenarioNames.of(config, name).database) as conn, conn.cursor() as cur:
        cur.execute("SELECT email FROM users ORDER BY id")
        return [row[0] for row in cur.fetchall()]


def test_load_builds_the_database_and_leaves_the_development_one_alone(dev_config):
    report = runner.load(resolve(dev_config), "users", size=250, seed=3)
    assert (report.name, report.database) == ("users", "scn_dev_scenario_users")
    assert report.counts == {"users": 250}
    assert table_counts(dev_config, "scn_dev") == {"users": 1}
    row = {r.name: r for r in runner.listing(resolve(dev_config))}["users"]
    assert row.loaded and row.counts == {"users": 250}
    assert row.description == "A few users with varied names and sign-up dates, for trying queries on users."
    assert not {r.name: r for r in runner.listing(resolve(dev_config))}["empty"].loaded


def test_same_seed_same_data_other_seed_other_data(dev_config):
    runner.load(resolve(dev_config), "users", size=30, seed=7)
    first = emails(dev_config, "users")
    runner.load(resolve(dev_config), "users", size=30, seed=7, force=True)
    assert emails(dev_config, "users") == first
    runner.load(resolve(dev_config), "users", size=30, seed=8, force=True)
    assert emails(dev_config, "users") != first


def test_existing_scenario_is_replaced_only_with_force(dev_config):
    runner.load(resolve(dev_config), "empty")
    with pytest.raises(runner.ScenarioExists, match="exists; pass --force"):
        runner.load(resolve(dev_config), "empty")


def test_reset_returns_to_the_loaded_state(dev_config):
    runner.load(resolve(dev_config), "users", size=10)
    with connect(dev_config, dbname=ScenarioNames.of(dev_config, "users").database) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users")
    assert runner.reset(resolve(dev_config), "users") == "scn_dev_scenario_users"
    assert table_counts(dev_config, "scn_dev_scenario_users") == {"users": 10}


@pytest.fixture
def users_loaded(dev_config):
    """The users scenario loaded (10 users) on the stand-in server, with its first spare made: (target, names)."""
    target, names = resolve(dev_config), ScenarioNames.of(dev_config, "users")
    runner.load(target, "users", size=10)
    runner.wait_for_refill(target, "users")
    return target, names


def database_oid(config, name):
    with admin_cursor(config) as cur:
        cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,))
        row = cur.fetchone()
        return row[0] if row else None


def test_reset_swaps_in_the_spare_made_in_the_background(users_loaded, dev_config):
    target, names = users_loaded
    spare = database_oid(dev_config, names.spare)
    assert spare is not None
    client = connect(dev_config, dbname=names.database)
    with client.cursor() as cur:
        cur.execute("DELETE FROM users")
    client.commit()
    assert runner.reset(target, "users") == names.database
    assert database_oid(dev_config, names.database) == spare  # swapped in, not copied
    assert table_counts(dev_config, names.database) == {"users": 10}
    with pytest.raises(psycopg2.OperationalError), client.cursor() as cur:
        cur.execute("SELECT 1")  # the client on the old database was disconnected, not left on it
    runner.wait_for_refill(target, "users")
    assert database_oid(dev_config, names.trash) is None
    assert database_oid(dev_config, names.spare) not in (None, spare)  # the next one is ready
    with admin_cursor(dev_config) as cur:
        assert database_mark(cur, names.database) == database_mark(cur, names.spare) == names.mark


def test_reset_copies_the_template_while_a_refill_is_at_work(users_loaded, dev_config):
    target, names = users_loaded
    spare = database_oid(dev_config, names.spare)
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        with connect(dev_config, dbname=names.database) as conn, conn.cursor() as c:
            c.execute("DELETE FROM users")
        runner.reset(target, "users")
        assert database_oid(dev_config, names.database) not in (None, spare)
        assert table_counts(dev_config, names.database) == {"users": 10}
        assert database_oid(dev_config, names.spare) == spare  # left to the refill that holds the lock


def test_reset_without_a_spare_copies_the_template_and_has_one_made(users_loaded, dev_config):
    target, names = users_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    delete_users(dev_config, names.database)
    runner.reset(target, "users")
    assert table_counts(dev_config, names.database) == {"users": 10}
    runner.wait_for_refill(target, "users")
    assert database_oid(dev_config, names.spare) is not None


def delete_users(config, database):
    with connect(config, dbname=database) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users")


def test_reset_copies_the_template_when_a_client_holds_on_to_the_database(users_loaded, dev_config, monkeypatch):
    target, names = users_loaded
    delete_users(dev_config, names.database)
    monkeypatch.setattr(runner, "terminate_connections", lambda cur, name: None)  # as if it reconnected at once
    client = connect(dev_config, dbname=names.database)
    try:
        runner.reset(target, "users")  # the rename is refused; the drop that ends sessions is not
    finally:
        client.close()
    assert table_counts(dev_config, names.database) == {"users": 10}


def test_reset_clears_a_database_left_aside_by_a_refill_that_was_stopped(users_loaded, dev_config):
    target, names = users_loaded
    with admin_cursor(dev_config) as cur:
        create_database(cur, names.trash, mark=names.mark)
    spare = database_oid(dev_config, names.spare)
    runner.reset(target, "users")
    assert database_oid(dev_config, names.database) == spare


def test_each_scenario_has_databases_of_its_own(dev_config):
    users, empty = ScenarioNames.of(dev_config, "users"), ScenarioNames.of(dev_config, "empty")
    assert users.mark != empty.mark
    for field in ("database", "template", "spare", "trash"):
        assert getattr(users, field) != getattr(empty, field)
        assert getattr(users, field).startswith("scn_dev_scenario_users")


def test_reset_returns_before_the_background_copy_is_made(users_loaded, dev_config, monkeypatch, tmp_path):
    target, names = users_loaded
    go = tmp_path / "go"
    real_create = spares.create_database

    def create_when_told(*args, **kwargs):  # the forked refill inherits this
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(spares, "create_database", create_when_told)
    runner.reset(target, "users")  # swaps the spare in; the refill then waits for `go` to make the next
    assert database_oid(dev_config, names.spare) is None  # reset did not wait for it
    waiting = threading.Thread(target=runner.wait_for_refill, args=(target, "users"))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive()  # wait_for_refill waits for the refill at work
    go.touch()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and database_oid(dev_config, names.spare) is not None


def test_start_refill_says_what_the_refill_did(users_loaded, dev_config, monkeypatch):
    target, names = users_loaded
    assert spares.start_refill(target.admin(), names) == "working"
    runner.wait_for_refill(target, "users")
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        assert spares.start_refill(target.admin(), names) == "busy"
    monkeypatch.setattr(spares, "FORK_SAFE", False)
    assert spares.start_refill(target.admin(), names) == "done"


def test_a_spare_the_scenario_did_not_make_is_not_swapped_in(users_loaded, dev_config):
    target, names = users_loaded
    with admin_cursor(dev_config) as cur:
        cur.execute(f"COMMENT ON DATABASE {names.spare} IS 'someone else'")
    spare = database_oid(dev_config, names.spare)
    runner.reset(target, "users")
    assert database_oid(dev_config, names.database) != spare
    runner.wait_for_refill(target, "users")
    assert database_oid(dev_config, names.spare) == spare
    with admin_cursor(dev_config) as cur:
        cur.execute(f"COMMENT ON DATABASE {names.spare} IS %s", (names.mark,))


def test_load_and_drop_wait_for_a_refill_at_work_and_say_when_it_takes_too_long(dev_config, monkeypatch):
    target, names = resolve(dev_config), ScenarioNames.of(dev_config, "empty")
    runner.load(target, "empty")
    monkeypatch.setattr(spares, "LOCK_TIMEOUT", "200ms")
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        with pytest.raises(ScenarioError, match="still being prepared by a background process after 200ms"):
            runner.drop(target, "empty")
        with pytest.raises(ScenarioError, match="still being prepared"):
            runner.load(target, "empty", force=True)
    with admin_cursor(dev_config) as cur:
        create_database(cur, names.trash, mark=names.mark)  # as a refill stopped half-way leaves it
    assert runner.drop(target, "empty") is True
    for database in (names.database, names.template, names.spare, names.trash):
        assert database_oid(dev_config, database) is None


def test_reset_of_a_scenario_not_loaded_says_to_load_it(dev_config):
    with pytest.raises(ScenarioError, match="not loaded; run `inv scenario.load empty`"):
        runner.reset(resolve(dev_config), "empty")


def test_drop_removes_database_and_template(dev_config):
    runner.load(resolve(dev_config), "empty")
    assert runner.drop(resolve(dev_config), "empty") is True
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_empty")
        assert not database_exists(cur, "scn_dev_scenario_empty_template")
    assert runner.drop(resolve(dev_config), "empty") is False


def test_drop_of_a_scenario_whose_template_is_gone_still_drops_its_database(dev_config):
    runner.load(resolve(dev_config), "empty")
    with admin_cursor(dev_config) as cur:
        drop_database(cur, "scn_dev_scenario_empty_template", mark=ScenarioNames.of(dev_config, "empty").mark)
    assert runner.drop(resolve(dev_config), "empty") is True
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_empty")


def test_copy_rows_loads_every_row_as_given_and_counts_them(db_session, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)  # batches of 2, and a last one of 1
    rows = [("a@example.com", 'Ann, "the first"'), ("b@example.com", "Zoë 😀"), ("c@example.com", "Cy")]
    assert copying.copy_rows(db_session.connection(), "users", ("email", "name"), iter(rows)) == 3
    loaded = db_session.execute(text("SELECT email, name FROM users ORDER BY id")).all()
    assert [tuple(row) for row in loaded] == rows


def test_copy_rows_stops_at_the_first_batch_the_server_refuses(db_session, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)
    made = []

    def rows():
        for i, email in enumerate(["a@x.org", "b@x.org", "c@x.org", "a@x.org", "e@x.org", "f@x.org", "g@x.org"]):
            made.append(i)
            yield email, "Name"

    with pytest.raises(psycopg2.errors.UniqueViolation):
        copying.copy_rows(db_session.connection(), "users", ("email", "name"), rows())
    # The second batch (c, a) fails while the third is being made; the fourth is never made.
    assert made == [0, 1, 2, 3, 4, 5]


def test_copy_rows_raises_when_the_server_refuses_the_last_batch(db_session, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)
    rows = [("a@x.org", "Name"), ("b@x.org", "Name"), ("a@x.org", "Name")]
    with pytest.raises(psycopg2.errors.UniqueViolation):
        copying.copy_rows(db_session.connection(), "users", ("email", "name"), iter(rows))


def test_copy_rows_passes_on_the_rows_own_error(db_session):
    def rows():
        yield "a@x.org", "Name"
        raise ValueError("no more names")

    with pytest.raises(ValueError, match="no more names"):
        copying.copy_rows(db_session.connection(), "users", ("email", "name"), rows())


@given(st.integers(min_value=0, max_value=users_scenario.SPAN_DAYS * 24 * 3600 - 1))
def test_users_scenario_formats_dates_as_isoformat_does(seconds):
    assert users_scenario.created_at(seconds) == (users_scenario.EPOCH + timedelta(seconds=seconds)).isoformat()


def test_fill_defaults_to_the_scenarios_size_and_the_default_seed():
    seen = {}

    class Module:
        @staticmethod
        def fill(connection, *, size, rng):
            seen.update(size=size, draw=rng.random())

    catalogue.Scenario("fake", "A fake.", 7, Module).fill(None)
    assert seen == {"size": 7, "draw": random.Random(catalogue.DEFAULT_SEED).random()}


@pytest.mark.parametrize(
    ("broken", "step"),
    [
        ("create_database", "creating the database"),
        ("upgrade", "applying the migrations"),
        ("template", "saving the template for reset"),
    ],
)
def test_a_failing_step_is_named_and_leaves_no_half_built_database(dev_config, monkeypatch, broken, step):
    create_database = runner.create_database

    def fail(*args, **kwargs):
        if broken != "template" or kwargs.get("template"):
            raise RuntimeError("it broke")
        return create_database(*args, **kwargs)

    monkeypatch.setattr(runner, "create_database" if broken == "template" else broken, fail)
    with pytest.raises(ScenarioError) as info:
        runner.load(resolve(dev_config), "empty")
    assert str(info.value) == f"Scenario 'empty' failed while {step}: it broke. Its half-built database was dropped."
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_empty")
        assert not database_exists(cur, "scn_dev_scenario_empty_template")


def test_unknown_scenario_lists_the_available_ones():
    with pytest.raises(ScenarioError, match=r"no scenario 'nope'; available scenarios: empty, users, volume"):
        catalogue.get("nope")


def test_failing_script_leaves_no_half_built_database(dev_config, tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text(
        '"""Breaks halfway."""\n\ndef fill(connection, *, size, rng):\n'
        "    connection.exec_driver_sql(\"INSERT INTO users (email, name) VALUES ('a', 'b')\")\n"
        '    raise RuntimeError("the script broke")\n'
    )
    monkeypatch.setattr(catalogue, "SCENARIO_DIR", tmp_path)
    with pytest.raises(
        ScenarioError,
        match=r"failed while running scenarios/broken.py: the script broke\. "
        r"Its half-built database was dropped",
    ):
        runner.load(resolve(dev_config), "broken")
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_broken")
    assert table_counts(dev_config, "scn_dev") == {"users": 1}


def test_a_module_without_fill_is_refused(tmp_path, monkeypatch):
    (tmp_path / "nofill.py").write_text('"""No fill."""\n')
    monkeypatch.setattr(catalogue, "SCENARIO_DIR", tmp_path)
    with pytest.raises(ScenarioError, match="has no fill"):
        catalogue.get("nofill")


def test_scenario_never_drops_a_database_it_did_not_create(dev_config):
    with admin_cursor(dev_config) as cur:
        cur.execute('CREATE DATABASE "scn_dev_scenario_empty"')
    with pytest.raises(DatabaseError, match="not created by this project"):
        runner.load(resolve(dev_config), "empty", force=True)
    with admin_cursor(dev_config) as cur:
        assert database_exists(cur, "scn_dev_scenario_empty")
        cur.execute('DROP DATABASE "scn_dev_scenario_empty"')


def test_progress_bar_is_fed_every_row(dev_config, monkeypatch):
    seen = []

    class Bar:
        def __init__(self, **kw):
            seen.append(kw)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            seen.append(n)

    monkeypatch.setattr(copying, "COPY_BATCH", 40)
    runner.load(resolve(dev_config), "users", size=100, progress=Bar)
    assert seen[0] == {"total": 100, "desc": "users", "unit": "rows"} and sum(seen[1:]) == 100


@pytest.mark.scenario("users", size=25, seed=2)
def test_a_test_can_start_from_a_scenario(client):
    assert client.get("/users").json["total"] == 25


@pytest.mark.scenario("volume", size=40)
def test_volume_scenario_fills_and_analyzes(client):
    assert client.get("/users?per_page=1").json["total"] == 40


def test_scenario_databases_are_marked_with_their_config_and_scenario():
    from project.configuration import load_config

    config = load_config("testing", environ={})
    assert ScenarioNames.of(config, "users").mark == "managed by the project; config testing; scenario users"


def test_a_failing_clean_up_does_not_hide_the_step_that_failed(dev_config, monkeypatch):
    failed, admin_cursor = [], runner.admin_cursor

    def upgrade(*args, **kwargs):
        failed.append(True)
        raise RuntimeError("it broke")

    def cursor_until_the_failure(*args, **kwargs):
        if failed:
            raise DatabaseError("the server went away")
        return admin_cursor(*args, **kwargs)

    monkeypatch.setattr(runner, "upgrade", upgrade)
    monkeypatch.setattr(runner, "admin_cursor", cursor_until_the_failure)
    with pytest.raises(ScenarioError, match="failed while applying the migrations: it broke"):
        runner.load(resolve(dev_config), "empty")


def test_get_reads_name_description_and_default_size_from_the_module(tmp_path):
    (tmp_path / "sized.py").write_text(
        '"""First line.\n\nMore."""\nDEFAULT_SIZE = 5\n\ndef fill(connection, *, size, rng):\n    pass\n'
    )
    (tmp_path / "plain.py").write_text("def fill(connection, *, size, rng):\n    pass\n")
    sized, plain = catalogue.get("sized", tmp_path), catalogue.get("plain", tmp_path)
    assert (sized.name, sized.description, sized.default_size) == ("sized", "First line.", 5)
    assert (plain.name, plain.description, plain.default_size) == ("plain", "(no description)", catalogue.DEFAULT_SIZE)


def test_get_in_a_folder_without_scenarios_says_none(tmp_path):
    with pytest.raises(ScenarioError) as info:
        catalogue.get("users", tmp_path)
    assert str(info.value) == "There is no scenario 'users'; available scenarios: none."


def test_where_forking_is_unsafe_the_refill_is_done_before_reset_returns(users_loaded, dev_config, monkeypatch):
    target, names = users_loaded
    monkeypatch.setattr(spares, "FORK_SAFE", False)
    monkeypatch.setattr(background.os, "fork", lambda: pytest.fail("forked where forking is unsafe"))
    spare = database_oid(dev_config, names.spare)
    runner.reset(target, "users")
    assert database_oid(dev_config, names.database) == spare
    assert database_oid(dev_config, names.trash) is None  # already dropped, and
    assert database_oid(dev_config, names.spare) not in (None, spare)  # the next spare made, before it returned


def test_refill_drops_the_swapped_out_database_and_makes_the_spare(users_loaded, dev_config):
    target, names = users_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
        cur.execute(f"ALTER DATABASE {names.database} RENAME TO {names.trash}")
        create_database(cur, names.database, template=names.template, mark=names.mark)
    said = []
    spares.refill(target.admin(), names, said.append)
    assert said == ["working"]
    assert database_oid(dev_config, names.trash) is None
    assert table_counts(dev_config, names.spare) == {"users": 10}


def test_refill_leaves_everything_to_the_refill_that_holds_the_lock(users_loaded, dev_config):
    target, names = users_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    said = []
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        spares.refill(target.admin(), names, said.append)
    assert said == ["busy"] and database_oid(dev_config, names.spare) is None


def test_the_background_refill_reports_through_its_pipe_and_swallows_database_errors(dev_config):
    names = ScenarioNames.of(dev_config, "users")
    read_end, write_end = os.pipe()
    unreachable = {**resolve(dev_config).admin(), "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1"}
    spares.refill_and_report(unreachable, names, write_end)  # cannot connect: says nothing, raises nothing
    os.close(write_end)
    with os.fdopen(read_end) as said:
        assert said.read() == ""
    read_end, write_end = os.pipe()
    spares.refill_and_report(resolve(dev_config).admin(), names, write_end)
    with os.fdopen(read_end) as said:
        assert said.read() == "working"  # and it closed its end, or this read would wait
