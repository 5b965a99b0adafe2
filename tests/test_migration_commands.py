"""Migration commands on migrations of the tests' own (a probe table, not the example app's model): a failed
migration ends in one sentence and leaves nothing half-applied; `db.migrate` creates a missing database."""

import shutil
import subprocess
import textwrap

import pytest

from devtools import cli, lifecycle, migrations
from devtools.databases import admin_cursor, database_exists, drop_database, owner_mark
from devtools.errors import DatabaseError
from devtools.target import resolve
from project.revisions import MIGRATIONS_DIR
from tests.helpers import config_for, inv, one_sentence

REVISION = '''
"""{message}

Revision ID: {revision}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{body}


def downgrade():
    pass
'''
ADD_PROBES = """\
    op.create_table("probes", sa.Column("id", sa.Integer(), primary_key=True))
    op.execute("INSERT INTO probes DEFAULT VALUES")"""
# A NOT NULL column without a default on a table with rows: PostgreSQL refuses it.
REQUIRE_LABEL = """\
    op.create_table("audit", sa.Column("id", sa.Integer(), primary_key=True))
    op.add_column("probes", sa.Column("label", sa.Text(), nullable=False))"""


@pytest.fixture
def probe_migrations(tmp_path):
    """A migrations directory with the project's alembic setup and two revisions of the tests' own: the second
    fails on a table with rows."""
    directory = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, directory, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    (directory / "versions").mkdir()
    for revision, down, message, body in (
        ("a1", None, "add probes table", ADD_PROBES),
        ("b2", "a1", "require a label on probes", REQUIRE_LABEL),
    ):
        text = REVISION.format(message=message, revision=revision, down=down, body=body)
        (directory / "versions" / f"{revision}.py").write_text(textwrap.dedent(text))
    return directory


@pytest.fixture
def probe_config(postgresql_server, probe_migrations, request):
    """The testing config pointed at a new database of this test's own, with the probe migrations."""
    name = f"mig_{request.node.name[:40].lower()}"
    config = config_for(postgresql_server, name).replace(MIGRATIONS_DIR=str(probe_migrations))
    lifecycle.create_database_if_missing(resolve(config))
    yield config
    with admin_cursor(config) as cur:
        drop_database(cur, name, mark=owner_mark("testing"))


def columns(config, table):
    with admin_cursor(config, dbname=config["POSTGRES_DB"]) as cur:
        cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
        return {row[0] for row in cur.fetchall()}


def test_a_failed_migration_names_the_revision_and_the_error_and_applies_nothing(probe_config):
    migrations.upgrade(probe_config, "a1")
    with pytest.raises(DatabaseError) as failure:
        migrations.upgrade(probe_config)
    message = one_sentence(str(failure.value))
    assert message.startswith("Migration upgrade a1 -> b2 (require a label on probes) failed on database 'mig_")
    assert 'column "label" of relation "probes" contains null values' in message
    assert "rolled back" in message
    # Nothing of the failed revision stays: the revision, its new table and its column are all gone.
    assert migrations.current_revision(probe_config) == "a1"
    assert columns(probe_config, "probes") == {"id"} and columns(probe_config, "audit") == set()


def test_a_failed_run_of_several_revisions_leaves_the_database_where_it_was(probe_config):
    with pytest.raises(DatabaseError, match="Migration upgrade a1 -> b2 "):
        migrations.upgrade(probe_config)
    assert migrations.current_revision(probe_config) is None
    assert columns(probe_config, "probes") == set()


def test_db_migrate_creates_and_migrates_a_missing_database_first(postgresql_server):
    env = {
        "APPLICATION_CONFIG": "development",
        "POSTGRES_HOST": postgresql_server.host,
        "POSTGRES_PORT": str(postgresql_server.port),
        "POSTGRES_USER": postgresql_server.user,
        "POSTGRES_DB": "migrate_missing",
    }
    try:
        result = inv("db.migrate", "-m", "nothing new", env=env)
        assert result.returncode == 0, result.stderr
        assert "Database 'migrate_missing' created and migrated to revision" in result.stdout
        assert "no migration written" in result.stdout
    finally:
        with admin_cursor(config_for(postgresql_server, "postgres")) as cur:
            existed = database_exists(cur, "migrate_missing")
            drop_database(cur, "migrate_missing", mark=owner_mark("development"))
    assert existed


def test_the_printed_psql_command_connects_as_printed(postgresql_server):
    """No password prompt: the command names the passfile that holds the password nobody is shown."""
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed (the PostgreSQL client); the printed command needs it")
    config = config_for(postgresql_server, "postgres")
    command = cli.psql_command(config, "postgres")
    assert "PGPASSFILE=" in command
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}  # no PGPASSFILE, no PGPASSWORD, no ~/.pgpass
    result = subprocess.run(
        f"{command} -XAtc 'SELECT 6 * 7'",
        shell=True,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout.strip() == "42", result.stderr
