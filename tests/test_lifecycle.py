"""Database operations against a real server: init is idempotent, reset and drop respect ownership."""

import contextlib

import psycopg2.errors
import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from devtools import lifecycle, migrations
from devtools.databases import (
    admin_cursor,
    check_name,
    create_database,
    database_exists,
    database_mark,
    drop_database,
    drop_leftover,
    ensure_role,
    owner_mark,
    staging_name,
)
from devtools.errors import DatabaseError
from devtools.target import is_loopback, resolve
from project.configuration import ConfigError, load_config
from tests import domain
from tests.helpers import AfterStatement, Killed, KilledAfter, config_for, end_session
from tests.server import scratch_database

# A config for a database that does not exist yet on the run's server, with the tests' own migrations
# (tests/domain); dropped afterwards.
fresh_config = scratch_database("ops_{test}")
# The same with the project's own migrations, for comparing them with the project's models: they agree in any
# project, whatever its models are.
project_config = scratch_database("opsp_{test}", domain=False)


def test_init_creates_migrates_and_a_second_run_changes_nothing(fresh_config):
    first = lifecycle.init_database(resolve(fresh_config))
    assert first.created and first.after == domain.HEAD
    assert "created and migrated" in str(first)
    second = lifecycle.init_database(resolve(fresh_config))
    assert not second.created and second.before == second.after == domain.HEAD
    assert "already up to date" in str(second) and "nothing changed" in str(second)


def test_downgrade_then_init_migrates_forward_again(fresh_config):
    lifecycle.init_database(resolve(fresh_config))
    migrations.downgrade(fresh_config, "base")
    assert migrations.current_revision(fresh_config) is None
    report = lifecycle.init_database(resolve(fresh_config))
    assert "migrated from revision none" in str(report)


def test_models_match_the_migrations(project_config):
    lifecycle.init_database(resolve(project_config))
    assert migrations.check_models(project_config) is None


def test_check_reports_a_schema_that_differs_from_the_models(project_config):
    lifecycle.init_database(resolve(project_config))
    with admin_cursor(project_config, dbname=project_config["POSTGRES_DB"]) as cur:
        cur.execute("CREATE TABLE stray (nickname text)")
    assert "stray" in migrations.check_models(project_config)


def test_check_on_a_database_behind_head_says_so(project_config):
    lifecycle.init_database(resolve(project_config))
    migrations.downgrade(project_config, "base")
    with pytest.raises(DatabaseError, match="Target database is not up to date"):
        migrations.check_models(project_config)


def test_autogenerate_writes_nothing_when_models_match(project_config):
    lifecycle.init_database(resolve(project_config))
    assert migrations.autogenerate(project_config, "nothing to do") is None


def test_reset_rebuilds_an_owned_database(fresh_config):
    from devtools.databases import table_counts

    lifecycle.init_database(resolve(fresh_config))
    with admin_cursor(fresh_config, dbname=fresh_config["POSTGRES_DB"]) as cur:
        cur.execute("INSERT INTO items (label) VALUES ('a')")
        cur.execute("CREATE TABLE stray (nickname text)")
    report = lifecycle.reset_database(resolve(fresh_config))
    assert report.created and report.after == domain.HEAD
    assert table_counts(fresh_config, fresh_config["POSTGRES_DB"]) == {"items": 0}


def test_reset_refuses_a_database_the_project_did_not_create(postgresql_server):
    config = config_for(postgresql_server, "foreign_db")
    janitor = DatabaseJanitor(
        user=config["POSTGRES_USER"], host=config["POSTGRES_HOST"], port=config["POSTGRES_PORT"], dbname="foreign_db"
    )
    with janitor:
        with pytest.raises(
            DatabaseError, match="Refusing to drop database 'foreign_db': it was not created by this project"
        ):
            lifecycle.reset_database(resolve(config))
        with admin_cursor(config) as cur:
            assert database_exists(cur, "foreign_db")


def test_reset_refuses_production(postgresql_server):
    config = config_for(postgresql_server, "x").replace(FLASK_CONFIG="production")
    with pytest.raises(ConfigError, match="Refusing to reset the database of the 'testing' config"):
        lifecycle.reset_database(resolve(config))


def test_a_config_with_port_zero_is_refused_for_database_tasks():
    with pytest.raises(ConfigError, match="POSTGRES_PORT is 0"):
        resolve(load_config("testing", environ={}))


def test_unreachable_server_is_one_sentence(postgresql_server):
    from devtools.processes import free_port

    config = config_for(postgresql_server, "x").replace(POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(free_port()))
    with pytest.raises(DatabaseError, match=r"Cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ as postgres"):
        lifecycle.create_database_if_missing(resolve(config))


def test_drop_database_refuses_a_wrong_mark(postgresql_server):
    config = config_for(postgresql_server, "x")
    with admin_cursor(config) as cur:
        create_database(cur, "marked_db", mark="something else")
        with pytest.raises(DatabaseError, match="not created by this project"):
            drop_database(cur, "marked_db", mark=owner_mark("testing"))
        assert drop_database(cur, "marked_db", mark="something else")
        assert not drop_database(cur, "marked_db", mark="something else")


def test_uses_local_cluster_only_for_loopback_on_the_cluster_port():
    dev = load_config("development", environ={})
    assert resolve(dev).cluster is not None
    assert resolve(dev.replace(POSTGRES_HOST="db.example.com")).cluster is None
    assert resolve(dev.replace(POSTGRES_PORT="5432")).cluster is None
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("db")


def test_owner_marks_name_the_config_and_the_scenario():
    assert owner_mark("testing") == "managed by the project; config testing"
    assert owner_mark("testing", scenario="items") == "managed by the project; config testing; scenario items"


def test_a_name_postgresql_would_truncate_is_refused():
    assert check_name("a" * 63) == "a" * 63
    with pytest.raises(DatabaseError) as info:
        check_name("é" * 32)
    assert str(info.value) == (
        f"The database name '{'é' * 32}' is 64 bytes long; PostgreSQL keeps only 63, so it could collide with another "
        "name: shorten POSTGRES_DB or the scenario's name."
    )


def test_create_database_gives_it_the_owner_asked_for(postgresql_server):
    config = config_for(postgresql_server, "x")
    with admin_cursor(config) as cur:
        ensure_role(cur, "owner_role")
        create_database(cur, "owned_db", mark=owner_mark("testing"), owner="owner_role")
        try:
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'owned_db'")
            assert cur.fetchone() == ("owner_role",)
        finally:
            drop_database(cur, "owned_db", mark=owner_mark("testing"))
            cur.execute("DROP ROLE owner_role")


def test_a_production_database_is_never_dropped(postgresql_server):
    config = config_for(postgresql_server, "x")
    with admin_cursor(config) as cur:
        create_database(cur, "kept_db", mark=owner_mark("production"))
        try:
            with pytest.raises(DatabaseError) as info:
                drop_database(cur, "kept_db", mark=owner_mark("production"))
            assert str(info.value) == (
                "Refusing to drop database 'kept_db': it was created under the 'production' config and holds its data."
            )
            assert database_exists(cur, "kept_db")
        finally:
            cur.execute('DROP DATABASE "kept_db"')


def test_a_drop_the_server_refuses_is_one_sentence(postgresql_server):
    config = config_for(postgresql_server, "x")
    with admin_cursor(config) as cur:
        create_database(cur, "template_db", mark=owner_mark("testing"))
        cur.execute('ALTER DATABASE "template_db" IS_TEMPLATE true')
        try:
            with pytest.raises(DatabaseError) as info:
                drop_database(cur, "template_db", mark=owner_mark("testing"))
            assert str(info.value) == "Could not drop database 'template_db': cannot drop a template database"
        finally:
            cur.execute('ALTER DATABASE "template_db" IS_TEMPLATE false')
            drop_database(cur, "template_db", mark=owner_mark("testing"))


def test_connect_passes_extra_parameters_to_the_driver(postgresql_server):
    from devtools.databases import connect

    config = config_for(postgresql_server, "postgres")
    with contextlib.closing(connect(config, application_name="lifecycle-test")) as conn, conn.cursor() as cur:
        cur.execute("SHOW application_name")
        assert cur.fetchone() == ("lifecycle-test",)


def assert_made_again_over_its_leftover(config, name, mark):
    """Assert that ``name`` is not there after a creation stopped half-way, and that the next creation makes it,
    clearing the leftover under its staging name."""
    with admin_cursor(config) as cur:
        assert not database_exists(cur, name)
        create_database(cur, name, mark=mark)
        assert database_mark(cur, name) == mark and not database_exists(cur, staging_name(name))
        drop_database(cur, name, mark=mark)


def test_a_creation_killed_before_its_mark_leaves_no_unmarked_database_and_is_recovered(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")
    with pytest.raises(Killed), admin_cursor(config) as cur:  # the connection goes, as a killed process's does
        create_database(KilledAfter(cur, "CREATE DATABASE"), "half_made", mark=mark)
    with admin_cursor(config) as cur:
        assert database_exists(cur, staging_name("half_made"))
        assert database_mark(cur, staging_name("half_made")) is None  # the leftover, under its staging name
    assert_made_again_over_its_leftover(config, "half_made", mark)


def test_a_creation_killed_before_its_rename_is_recovered(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")
    with pytest.raises(Killed), admin_cursor(config) as cur:
        create_database(KilledAfter(cur, "COMMENT ON DATABASE"), "half_named", mark=mark)
    assert_made_again_over_its_leftover(config, "half_named", mark)


def test_a_database_under_a_staging_name_that_is_not_recognisably_a_leftover_is_kept(postgresql_server):
    config = config_for(postgresql_server, "x")
    staging = staging_name("contested")
    with admin_cursor(config) as cur:
        cur.execute(f"CREATE DATABASE {staging}")
        cur.execute(f"COMMENT ON DATABASE {staging} IS 'someone else'")
        assert not drop_leftover(cur, "contested", owner_mark("testing"))
        with pytest.raises(psycopg2.errors.DuplicateDatabase):
            create_database(cur, "contested", mark=owner_mark("testing"))
        assert database_mark(cur, staging) == "someone else" and not database_exists(cur, "contested")
        cur.execute(f"DROP DATABASE {staging}")


def test_a_creation_under_a_taken_name_leaves_nothing_behind(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")
    with admin_cursor(config) as cur:
        create_database(cur, "taken_db", mark=mark)
        with pytest.raises(psycopg2.errors.DuplicateDatabase):
            create_database(cur, "taken_db", mark=mark)
        assert not database_exists(cur, staging_name("taken_db"))
        drop_database(cur, "taken_db", mark=mark)


def test_creations_of_one_name_take_turns_and_creations_of_another_do_not_wait(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")
    others = []

    def meanwhile(statement):  # a second creation starts while the first is half-way
        with admin_cursor(config) as other:
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg2.errors.LockNotAvailable):  # it waits for its turn: the first's half is safe
                create_database(other, "turn_db", mark=mark)
            create_database(other, "other_turn_db", mark=mark)
            others.append(database_mark(other, "other_turn_db"))

    with admin_cursor(config) as cur:
        create_database(AfterStatement(cur, "CREATE DATABASE", meanwhile), "turn_db", mark=mark)
        assert others == [mark] and database_mark(cur, "turn_db") == mark
        for name in ("turn_db", "other_turn_db"):
            drop_database(cur, name, mark=mark)


def test_a_creation_whose_connection_is_cut_half_way_raises_the_cut_and_is_recovered(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")

    def cut(statement):  # the server ends the session (a restart, an administrator): nothing more goes through
        end_session(config, pid)

    with admin_cursor(config) as cur:
        pid = cur.connection.get_backend_pid()
        # The clean-up and the release of the turn fail on the dead connection too; the caller sees the cut.
        with pytest.raises(psycopg2.OperationalError):
            create_database(AfterStatement(cur, "CREATE DATABASE", cut), "cut_db", mark=mark)
    assert_made_again_over_its_leftover(config, "cut_db", mark)


def test_a_creation_releases_its_turn_and_a_leftover_drop_says_it_dropped_one(postgresql_server):
    config, mark = config_for(postgresql_server, "x"), owner_mark("testing")
    with admin_cursor(config) as cur:
        create_database(cur, "turns_db", mark=mark)
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        assert cur.fetchone() == (0,)  # the session goes on, holding no turn
        drop_database(cur, "turns_db", mark=mark)
        cur.execute(f"CREATE DATABASE {staging_name('turns_db')}")  # unmarked: a creation killed half-way
        assert drop_leftover(cur, "turns_db", mark) is True
        assert drop_leftover(cur, "turns_db", mark) is False
