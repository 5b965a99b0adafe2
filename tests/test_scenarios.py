"""Scenarios: built from empty with the real migrations, reproducible, resettable, and never touching other data.

The scenarios, migrations and table here are the tests' own (tests/domain), not the app's.
"""

import os
import random
import re
import threading
import time

import psycopg2
import psycopg2.errors
import pytest
from sqlalchemy import text

from devtools import migrations
from devtools.databases import (
    admin_cursor,
    connect,
    create_database,
    database_exists,
    database_mark,
    drop_database,
    staging_name,
    table_counts,
)
from devtools.errors import DatabaseError, ScenarioError
from devtools.scenarios import background, catalogue, copying, runner, spares
from devtools.scenarios.naming import ScenarioNames
from devtools.target import resolve
from tests import domain
from tests.helpers import Killed, KilledAfter, end_session, one_sentence
from tests.server import scratch_database

pytestmark = pytest.mark.usefixtures("domain_scenarios")
scn_dev = scratch_database("scn_dev", migrated=True)


@pytest.fixture
def dev_config(scn_dev):
    """A stand-in development database on the run's server, holding one item."""
    with connect(scn_dev) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO items (label) VALUES ('keep')")
    return scn_dev


def labels(config, name):
    with connect(config, dbname=ScenarioNames.of(config, name).database) as conn, conn.cursor() as cur:
        return domain.labels(cur)


def test_load_builds_the_database_and_leaves_the_development_one_alone(dev_config):
    report = runner.load(resolve(dev_config), "items", size=250, seed=3)
    assert (report.name, report.database) == ("items", "scn_dev_scenario_items")
    assert report.counts == {"items": 250}
    assert table_counts(dev_config, "scn_dev") == {"items": 1}
    row = {r.name: r for r in runner.listing(resolve(dev_config))}["items"]
    assert row.loaded and row.counts == {"items": 250}
    assert row.description == "Items with labels drawn from the seed, for the tooling's tests."
    assert not {r.name: r for r in runner.listing(resolve(dev_config))}["blank"].loaded


def test_a_loaded_scenario_is_found_and_pointed_at_and_a_missing_one_named(dev_config):
    target = resolve(dev_config)
    with pytest.raises(ScenarioError) as refused:
        runner.loaded(target, "items")
    assert str(refused.value) == "scenario 'items' is not loaded; run `inv scenario.load items` first."
    assert runner.exists(target, "items") is False
    runner.load(target, "items", size=3)
    assert runner.exists(target, "items") is True and runner.exists(target, "blank") is False
    pointed = runner.loaded(target, "items")
    assert pointed.config["POSTGRES_DB"] == "scn_dev_scenario_items" and pointed.cluster is target.cluster
    assert target.config["POSTGRES_DB"] == "scn_dev"  # the target it came from is left as it was


def test_same_seed_same_data_other_seed_other_data(dev_config):
    runner.load(resolve(dev_config), "items", size=30, seed=7)
    first = labels(dev_config, "items")
    runner.load(resolve(dev_config), "items", size=30, seed=7, force=True)
    assert labels(dev_config, "items") == first
    runner.load(resolve(dev_config), "items", size=30, seed=8, force=True)
    assert labels(dev_config, "items") != first


def test_existing_scenario_is_replaced_only_with_force(dev_config):
    runner.load(resolve(dev_config), "blank")
    with pytest.raises(runner.ScenarioExists, match="exists; pass --force"):
        runner.load(resolve(dev_config), "blank")


def test_an_existing_scenario_is_replaced_once_the_user_confirms_it_by_its_database_name(dev_config):
    target, asked = resolve(dev_config), []
    runner.load(target, "items", size=3, confirm=asked.append)
    assert asked == []  # nothing to replace: nothing asked
    runner.load(target, "items", size=5, confirm=asked.append)
    assert asked == ["scn_dev_scenario_items"] and table_counts(dev_config, "scn_dev_scenario_items") == {"items": 5}

    def decline(database):
        raise ScenarioError(f"{database} kept")

    with pytest.raises(ScenarioError, match="^scn_dev_scenario_items kept$"):
        runner.load(target, "items", size=7, confirm=decline)
    assert table_counts(dev_config, "scn_dev_scenario_items") == {"items": 5}


def test_a_client_that_connected_to_the_new_database_does_not_stop_its_template_being_saved(dev_config, monkeypatch):
    names, clients = ScenarioNames.of(dev_config, "items"), []
    fill = runner._fill

    def fill_then_a_client_connects(*args, **kwargs):  # a GUI opening the new database as it appears, say
        counts = fill(*args, **kwargs)
        clients.append(connect(dev_config, dbname=names.database))
        return counts

    monkeypatch.setattr(runner, "_fill", fill_then_a_client_connects)
    runner.load(resolve(dev_config), "items", size=4)
    assert table_counts(dev_config, names.template) == {"items": 4}
    with pytest.raises(psycopg2.OperationalError), clients[0].cursor() as cur:  # its session was ended
        cur.execute("SELECT 1")
    clients[0].close()


def test_a_load_whose_connection_is_cut_says_what_failed_and_what_cleans_up(dev_config, monkeypatch):
    target, names, pids = resolve(dev_config), ScenarioNames.of(dev_config, "items"), []
    create_database, fill = runner.create_database, runner._fill

    def create_noting_the_session(cur, *args, **kwargs):
        pids.append(cur.connection.get_backend_pid())
        return create_database(cur, *args, **kwargs)

    def fill_then_the_session_is_ended(*args, **kwargs):  # the server restarts, say: clean-up cannot run either
        counts = fill(*args, **kwargs)
        end_session(dev_config, pids[0])
        return counts

    monkeypatch.setattr(runner, "create_database", create_noting_the_session)
    monkeypatch.setattr(runner, "_fill", fill_then_the_session_is_ended)
    with pytest.raises(ScenarioError) as info:
        runner.load(target, "items", size=3)
    assert re.fullmatch(  # libpq's and psycopg2's words for the cut depend on when the client notices it
        r"Scenario 'items' failed while saving the template for reset: [^.]+\. Dropping its half-built database "
        r"failed too \((connection|cursor) already closed\); run `inv scenario.drop items`\.",
        one_sentence(str(info.value)),
    )
    monkeypatch.undo()
    assert runner.drop(target, "items") is True
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, names.database)


@pytest.mark.parametrize("killed_after", ["CREATE DATABASE", "COMMENT ON DATABASE"])
def test_a_copy_killed_half_way_is_cleared_by_the_next_load_and_by_drop(items_loaded, dev_config, killed_after):
    target, names = items_loaded

    def half_made_fresh_copy():  # a reset killed while it copied the template, before or after marking the copy
        with pytest.raises(Killed), admin_cursor(dev_config) as cur:
            create_database(KilledAfter(cur, killed_after), names.fresh, template=names.template, mark=names.mark)
        with admin_cursor(dev_config) as cur:
            assert database_exists(cur, staging_name(names.fresh))

    half_made_fresh_copy()
    runner.load(target, "items", size=10, force=True)
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, staging_name(names.fresh))
    runner.wait_for_refill(target, "items")
    half_made_fresh_copy()
    assert runner.drop(target, "items")
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, staging_name(names.fresh))


def test_reset_returns_to_the_loaded_state(dev_config):
    runner.load(resolve(dev_config), "items", size=10)
    with connect(dev_config, dbname=ScenarioNames.of(dev_config, "items").database) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM items")
    assert runner.reset(resolve(dev_config), "items") == "scn_dev_scenario_items"
    assert table_counts(dev_config, "scn_dev_scenario_items") == {"items": 10}


@pytest.fixture
def items_loaded(dev_config):
    """The items scenario loaded (10 items) on the stand-in server, with its first spare made: (target, names)."""
    target, names = resolve(dev_config), ScenarioNames.of(dev_config, "items")
    runner.load(target, "items", size=10)
    runner.wait_for_refill(target, "items")
    return target, names


def database_oid(config, name):
    with admin_cursor(config) as cur:
        cur.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,))
        row = cur.fetchone()
        return row[0] if row else None


def test_reset_swaps_in_the_spare_made_in_the_background(items_loaded, dev_config):
    target, names = items_loaded
    spare = database_oid(dev_config, names.spare)
    assert spare is not None
    client = connect(dev_config, dbname=names.database)
    with client.cursor() as cur:
        cur.execute("DELETE FROM items")
    client.commit()
    assert runner.reset(target, "items") == names.database
    assert database_oid(dev_config, names.database) == spare  # swapped in, not copied
    assert table_counts(dev_config, names.database) == {"items": 10}
    with pytest.raises(psycopg2.OperationalError), client.cursor() as cur:
        cur.execute("SELECT 1")  # the client on the old database was disconnected, not left on it
    runner.wait_for_refill(target, "items")
    assert database_oid(dev_config, names.trash) is None
    assert database_oid(dev_config, names.spare) not in (None, spare)  # the next one is ready
    with admin_cursor(dev_config) as cur:
        assert database_mark(cur, names.database) == database_mark(cur, names.spare) == names.mark


def test_reset_waits_for_a_refill_at_work_and_says_when_it_takes_too_long(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    monkeypatch.setattr(spares, "LOCK_TIMEOUT", "200ms")
    delete_items(dev_config, names.database)
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        with pytest.raises(ScenarioError, match="still being prepared by a background process after 200ms"):
            runner.reset(target, "items")
        assert table_counts(dev_config, names.database) == {"items": 0}  # nothing done outside the lock
    runner.reset(target, "items")
    assert table_counts(dev_config, names.database) == {"items": 10}


def test_concurrent_resets_all_succeed(items_loaded, dev_config):
    target, names = items_loaded
    errors = []

    def reset():
        try:
            runner.reset(target, "items")
        except Exception as exc:  # noqa: BLE001  collected, to show every failure
            errors.append(repr(exc))

    threads = [threading.Thread(target=reset) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    runner.wait_for_refill(target, "items")
    assert table_counts(dev_config, names.database) == {"items": 10}
    with admin_cursor(dev_config) as cur:
        assert database_mark(cur, names.database) == database_mark(cur, names.spare) == names.mark


def test_reset_copies_before_it_drops_and_says_so_when_the_template_is_in_use(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    delete_items(dev_config, names.database)
    browser = connect(dev_config, dbname=names.template)  # a GUI browsing the server
    try:
        with pytest.raises(ScenarioError) as info:
            runner.reset(target, "items")
    finally:
        browser.close()
    said = one_sentence(str(info.value))
    assert said.startswith(f"Scenario 'items' could not be reset: copying its template '{names.template}' failed (")
    assert "is being accessed by other users" in said  # PostgreSQL's own reason, its first line
    assert said.endswith(
        f"); '{names.database}' was left as it was. Close any session on the template and run the reset again."
    )
    assert table_counts(dev_config, names.database) == {"items": 0}
    runner.reset(target, "items")
    assert table_counts(dev_config, names.database) == {"items": 10}


def test_a_spare_whose_making_was_killed_leaves_load_and_drop_working(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    with pytest.raises(Killed), admin_cursor(dev_config) as cur:  # a refill killed between its copy and its mark
        create_database(KilledAfter(cur, "CREATE DATABASE"), names.spare, template=names.template, mark=names.mark)
    runner.load(target, "items", size=10, force=True)
    runner.wait_for_refill(target, "items")
    assert runner.drop(target, "items")
    with admin_cursor(dev_config) as cur:
        cur.execute("SELECT datname FROM pg_database WHERE datname LIKE 'scn_dev_scenario_items%%'")
        assert cur.fetchall() == []
        for database in (names.database, names.template, names.spare, names.fresh):
            assert not database_exists(cur, staging_name(database))


def test_reset_without_a_spare_copies_the_template_and_has_one_made(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    delete_items(dev_config, names.database)
    runner.reset(target, "items")
    assert table_counts(dev_config, names.database) == {"items": 10}
    runner.wait_for_refill(target, "items")
    assert database_oid(dev_config, names.spare) is not None


def test_reset_without_a_spare_clears_a_copy_left_by_a_reset_that_was_stopped(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
        create_database(cur, names.fresh, mark=names.mark)  # empty: not the template's copy
    delete_items(dev_config, names.database)
    runner.reset(target, "items")
    assert table_counts(dev_config, names.database) == {"items": 10}


def delete_items(config, database):
    with connect(config, dbname=database) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM items")


def test_reset_copies_the_template_when_a_client_holds_on_to_the_database(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    delete_items(dev_config, names.database)
    monkeypatch.setattr(runner, "terminate_connections", lambda cur, name: None)  # as if it reconnected at once
    client = connect(dev_config, dbname=names.database)
    try:
        runner.reset(target, "items")  # the rename is refused; the drop that ends sessions is not
    finally:
        client.close()
    assert table_counts(dev_config, names.database) == {"items": 10}


def test_reset_clears_a_database_left_aside_by_a_refill_that_was_stopped(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        create_database(cur, names.trash, mark=names.mark)
    spare, used = database_oid(dev_config, names.spare), database_oid(dev_config, names.database)
    monkeypatch.setattr(runner, "start_refill", lambda admin, names: None)  # the trash is kept to be seen
    runner.reset(target, "items")
    assert database_oid(dev_config, names.database) == spare
    assert database_oid(dev_config, names.trash) == used  # the leftover went; the used database was set aside


def test_reset_ends_the_sessions_on_the_database_and_sets_it_aside(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    used = database_oid(dev_config, names.database)
    monkeypatch.setattr(runner, "start_refill", lambda admin, names: None)
    client = connect(dev_config, dbname=names.database)  # a GUI left open on the scenario
    try:
        runner.reset(target, "items")
        with pytest.raises(psycopg2.OperationalError):
            client.cursor().execute("SELECT 1")
    finally:
        client.close()
    assert database_oid(dev_config, names.trash) == used  # renamed aside, not dropped


def test_each_scenario_has_databases_of_its_own(dev_config):
    items, blank = ScenarioNames.of(dev_config, "items"), ScenarioNames.of(dev_config, "blank")
    assert items.mark != blank.mark
    for field in ("database", "template", "spare", "trash", "fresh"):
        assert getattr(items, field) != getattr(blank, field)
        assert getattr(items, field).startswith("scn_dev_scenario_items")


def test_reset_returns_before_the_background_copy_is_made(items_loaded, dev_config, monkeypatch, tmp_path):
    target, names = items_loaded
    go = tmp_path / "go"
    real_create = spares.create_database

    def create_when_told(*args, **kwargs):  # the forked refill inherits this
        deadline = time.monotonic() + 30
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(spares, "create_database", create_when_told)
    runner.reset(target, "items")  # swaps the spare in; the refill then waits for `go` to make the next
    assert database_oid(dev_config, names.spare) is None  # reset did not wait for it
    waiting = threading.Thread(target=runner.wait_for_refill, args=(target, "items"))
    waiting.start()
    waiting.join(timeout=0.5)
    assert waiting.is_alive()  # wait_for_refill waits for the refill at work
    go.touch()
    waiting.join(timeout=60)
    assert not waiting.is_alive() and database_oid(dev_config, names.spare) is not None


def test_start_refill_says_what_the_refill_did(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    assert spares.start_refill(target.admin(), names) == "working"
    runner.wait_for_refill(target, "items")
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        assert spares.start_refill(target.admin(), names) == "busy"
    monkeypatch.setattr(spares, "FORK_SAFE", False)
    assert spares.start_refill(target.admin(), names) == "done"


def test_a_spare_the_scenario_did_not_make_is_not_swapped_in(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        cur.execute(f"COMMENT ON DATABASE {names.spare} IS 'someone else'")
    spare = database_oid(dev_config, names.spare)
    runner.reset(target, "items")
    assert database_oid(dev_config, names.database) != spare
    runner.wait_for_refill(target, "items")
    assert database_oid(dev_config, names.spare) == spare
    with admin_cursor(dev_config) as cur:
        cur.execute(f"COMMENT ON DATABASE {names.spare} IS %s", (names.mark,))


def test_load_and_drop_wait_for_a_refill_at_work_and_say_when_it_takes_too_long(dev_config, monkeypatch):
    target, names = resolve(dev_config), ScenarioNames.of(dev_config, "blank")
    runner.load(target, "blank")
    monkeypatch.setattr(spares, "LOCK_TIMEOUT", "200ms")
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        with pytest.raises(ScenarioError, match="still being prepared by a background process after 200ms"):
            runner.drop(target, "blank")
        with pytest.raises(ScenarioError, match="still being prepared"):
            runner.load(target, "blank", force=True)
    with admin_cursor(dev_config) as cur:
        create_database(cur, names.trash, mark=names.mark)  # as a refill stopped half-way leaves it
    assert runner.drop(target, "blank") is True
    for database in (names.database, names.template, names.spare, names.trash):
        assert database_oid(dev_config, database) is None


def test_reset_of_a_scenario_not_loaded_says_to_load_it(dev_config):
    with pytest.raises(ScenarioError, match="not loaded; run `inv scenario.load blank`"):
        runner.reset(resolve(dev_config), "blank")


def test_drop_removes_database_and_template(dev_config):
    runner.load(resolve(dev_config), "blank")
    assert runner.drop(resolve(dev_config), "blank") is True
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_blank")
        assert not database_exists(cur, "scn_dev_scenario_blank_template")
    assert runner.drop(resolve(dev_config), "blank") is False


def test_drop_of_a_scenario_whose_template_is_gone_still_drops_its_database(dev_config):
    runner.load(resolve(dev_config), "blank")
    with admin_cursor(dev_config) as cur:
        drop_database(cur, "scn_dev_scenario_blank_template", mark=ScenarioNames.of(dev_config, "blank").mark)
    assert runner.drop(resolve(dev_config), "blank") is True
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_blank")


@pytest.fixture
def copied(db_session):
    """A temporary table ``copied`` (a unique ``label``, a ``note``) in the test's transaction; yields its
    connection."""
    connection = db_session.connection()
    connection.exec_driver_sql("CREATE TEMPORARY TABLE copied (id serial, label text UNIQUE NOT NULL, note text)")
    return connection


def test_copy_rows_loads_every_row_as_given_and_counts_them(copied, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)  # batches of 2, and a last one of 1
    rows = [("a", 'Ann, "the first"'), ("b", "Zoë 😀"), ("c", "Cy\ttab\nline")]
    assert copying.copy_rows(copied, "copied", ("label", "note"), iter(rows)) == 3
    loaded = copied.execute(text("SELECT label, note FROM copied ORDER BY id")).all()
    assert [tuple(row) for row in loaded] == rows


def test_copy_rows_stops_at_the_first_batch_the_server_refuses(copied, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)
    made = []

    def rows():
        for i, label in enumerate(["a", "b", "c", "a", "e", "f", "g"]):
            made.append(i)
            yield label, "Note"

    with pytest.raises(psycopg2.errors.UniqueViolation):
        copying.copy_rows(copied, "copied", ("label", "note"), rows())
    # The second batch (c, a) fails while the third is being made; the fourth is never made.
    assert made == [0, 1, 2, 3, 4, 5]


def test_copy_rows_raises_when_the_server_refuses_the_last_batch(copied, monkeypatch):
    monkeypatch.setattr(copying, "COPY_BATCH", 2)
    rows = [("a", "Note"), ("b", "Note"), ("a", "Note")]
    with pytest.raises(psycopg2.errors.UniqueViolation):
        copying.copy_rows(copied, "copied", ("label", "note"), iter(rows))


def test_copy_rows_passes_on_the_rows_own_error(copied):
    def rows():
        yield "a", "Note"
        raise ValueError("no more notes")

    with pytest.raises(ValueError, match="no more notes"):
        copying.copy_rows(copied, "copied", ("label", "note"), rows())


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

    if broken == "upgrade":
        monkeypatch.setattr(migrations.Migrations, "upgrade", fail)
    else:
        monkeypatch.setattr(runner, "create_database", fail)
    with pytest.raises(ScenarioError) as info:
        runner.load(resolve(dev_config), "blank")
    assert str(info.value) == f"Scenario 'blank' failed while {step}: it broke. Its half-built database was dropped."
    with admin_cursor(dev_config) as cur:
        assert not database_exists(cur, "scn_dev_scenario_blank")
        assert not database_exists(cur, "scn_dev_scenario_blank_template")


def test_unknown_scenario_lists_the_available_ones(tmp_path):
    for name in ("beta", "alpha", "_private", "Not_a_name"):
        (tmp_path / f"{name}.py").write_text('"""A scenario."""\n\ndef fill(connection, *, size, rng):\n    pass\n')
    with pytest.raises(ScenarioError, match=r"no scenario 'nope'; available scenarios: alpha, beta\.$"):
        catalogue.get("nope", tmp_path)


def test_failing_script_leaves_no_half_built_database(dev_config, tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text(
        '"""Breaks halfway."""\n\ndef fill(connection, *, size, rng):\n'
        "    connection.exec_driver_sql(\"INSERT INTO items (label) VALUES ('a')\")\n"
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
    assert table_counts(dev_config, "scn_dev") == {"items": 1}


def test_a_module_without_fill_is_refused(tmp_path, monkeypatch):
    (tmp_path / "nofill.py").write_text('"""No fill."""\n')
    monkeypatch.setattr(catalogue, "SCENARIO_DIR", tmp_path)
    with pytest.raises(ScenarioError, match="has no fill"):
        catalogue.get("nofill")


def test_scenario_never_drops_a_database_it_did_not_create(dev_config):
    with admin_cursor(dev_config) as cur:
        cur.execute('CREATE DATABASE "scn_dev_scenario_blank"')
    with pytest.raises(DatabaseError, match="not created by this project"):
        runner.load(resolve(dev_config), "blank", force=True)
    with admin_cursor(dev_config) as cur:
        assert database_exists(cur, "scn_dev_scenario_blank")
        cur.execute('DROP DATABASE "scn_dev_scenario_blank"')


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
    runner.load(resolve(dev_config), "items", size=100, progress=Bar)
    assert seen[0] == {"total": 100, "desc": "items", "unit": "rows"} and sum(seen[1:]) == 100


@pytest.fixture
def counted_scenario(tmp_path, monkeypatch):
    """A scenario ``counted`` that makes a table of its own and puts ``size`` numbers drawn from its seed in it."""
    (tmp_path / "counted.py").write_text(
        '"""Numbers."""\n\ndef fill(connection, *, size, rng):\n'
        '    connection.exec_driver_sql("CREATE TABLE counted (n integer)")\n'
        "    for _ in range(size):\n"
        '        connection.exec_driver_sql("INSERT INTO counted VALUES (%s)", (rng.randrange(1000),))\n'
    )
    monkeypatch.setattr(catalogue, "SCENARIO_DIR", tmp_path)


@pytest.mark.scenario("counted", size=25, seed=2)
def test_a_test_can_start_from_a_scenario(counted_scenario, db_session):
    numbers = db_session.execute(text("SELECT n FROM counted")).scalars().all()
    drawn = random.Random(2)
    assert numbers == [drawn.randrange(1000) for _ in range(25)]


def test_scenario_databases_are_marked_with_their_config_and_scenario():
    from project.configuration import load_config

    config = load_config("testing", environ={})
    assert ScenarioNames.of(config, "items").mark == "managed by the project; config testing; scenario items"


def test_a_failing_clean_up_does_not_hide_the_step_that_failed(dev_config, monkeypatch):
    failed, admin_cursor = [], runner.admin_cursor

    def upgrade(*args, **kwargs):
        failed.append(True)
        raise RuntimeError("it broke")

    def cursor_until_the_failure(*args, **kwargs):
        if failed:
            raise DatabaseError("the server went away")
        return admin_cursor(*args, **kwargs)

    monkeypatch.setattr(migrations.Migrations, "upgrade", upgrade)
    monkeypatch.setattr(runner, "admin_cursor", cursor_until_the_failure)
    with pytest.raises(ScenarioError, match="failed while applying the migrations: it broke"):
        runner.load(resolve(dev_config), "blank")


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
        catalogue.get("items", tmp_path)
    assert str(info.value) == "There is no scenario 'items'; available scenarios: none."


def test_where_forking_is_unsafe_the_refill_is_done_before_reset_returns(items_loaded, dev_config, monkeypatch):
    target, names = items_loaded
    monkeypatch.setattr(spares, "FORK_SAFE", False)
    monkeypatch.setattr(background.os, "fork", lambda: pytest.fail("forked where forking is unsafe"))
    spare = database_oid(dev_config, names.spare)
    runner.reset(target, "items")
    assert database_oid(dev_config, names.database) == spare
    assert database_oid(dev_config, names.trash) is None  # already dropped, and
    assert database_oid(dev_config, names.spare) not in (None, spare)  # the next spare made, before it returned


def test_refill_drops_the_swapped_out_database_and_makes_the_spare(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
        cur.execute(f"ALTER DATABASE {names.database} RENAME TO {names.trash}")
        create_database(cur, names.database, template=names.template, mark=names.mark)
    said = []
    spares.refill(target.admin(), names, said.append)
    assert said == ["working"]
    assert database_oid(dev_config, names.trash) is None
    assert table_counts(dev_config, names.spare) == {"items": 10}


def test_refill_leaves_everything_to_the_refill_that_holds_the_lock(items_loaded, dev_config):
    target, names = items_loaded
    with admin_cursor(dev_config) as cur:
        drop_database(cur, names.spare, mark=names.mark)
    said = []
    with admin_cursor(dev_config) as cur, spares.refill_lock(cur, names):
        spares.refill(target.admin(), names, said.append)
    assert said == ["busy"] and database_oid(dev_config, names.spare) is None


def test_the_background_refill_reports_through_its_pipe_and_swallows_database_errors(dev_config):
    names = ScenarioNames.of(dev_config, "items")
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
