"""``inv db.*``: the local PostgreSQL cluster and a config's database (create, migrate, reset, psql)."""

from __future__ import annotations

from invoke import Collection, Exit

from devtools import cli, lifecycle, migrations
from devtools import target as targets
from devtools.cli import confirm, say, task
from project.configuration import load_config


@task
def start(c):
    """Start the local PostgreSQL cluster (created on first use)."""
    cluster = targets.local_cluster()
    started = targets.start_local(cluster)
    say(started or f"The local PostgreSQL cluster already runs on {targets.cluster_address(cluster)}.")


@task
def stop(c):
    """Stop the local PostgreSQL cluster; its data stays."""
    say("Local cluster stopped." if targets.local_cluster().stop() else "Local cluster was not running.")


@task
def status(c, config=None):
    """Show the local cluster's state and where its data lives."""
    config = load_config(config, require_secrets=False)
    cluster = targets.local_cluster()
    print(f"Local cluster: {cluster.status()}, {cluster.host}:{cluster.port}")
    where = "in the project" if cluster.base_dir.is_relative_to(cli.ROOT) else "outside the project (see README)"
    print(f"Data directory: {cluster.base_dir / 'data'} ({where})")
    points = "the local cluster" if targets.resolve(config, cluster).cluster else "another server"
    print(f"Config '{config.name}': database '{config['POSTGRES_DB']}' on {points}")
    print(f"PostgreSQL: {cluster.version()} ({cluster.bindir}); declared: {config.get('POSTGRES_MAJOR_VERSION', '-')}")
    say(cluster.version_note())


@task
def init(c, config=None):
    """Create the database if missing and apply all migrations."""
    say(str(lifecycle.init_database(cli.resolve_target(config))))


@task(help={"message": 'What the migration does, lower-case imperative ("add users table")'})
def migrate(c, message, config=None):
    """Write a new migration from the models' changes."""
    target = cli.resolve_target(config)
    say(str(lifecycle.init_if_missing(target) or ""))
    path = migrations.autogenerate(target.config, message)
    say(f"Wrote {path}; read it before committing." if path else "The models match the database; no migration written.")


@task(help={"revision": "Target revision (default: head)"})
def upgrade(c, revision="head", config=None):
    """Apply migrations up to a revision."""
    target = cli.resolve_target(config)
    with migrations.opened(target.config) as steps:
        steps.upgrade(revision)
        say(f"Database '{target.database}' at revision {steps.current_revision()}.")


@task(help={"revision": "Target revision (default: -1, one step back)"})
def downgrade(c, revision="-1", config=None):
    """Revert migrations down to a revision."""
    target = cli.resolve_target(config)
    with migrations.opened(target.config) as steps:
        steps.downgrade(revision)
        say(f"Database '{target.database}' at revision {steps.current_revision() or 'none (empty)'}.")


@task
def check(c, config=None):
    """Exit 1 when the models and the migrations differ."""
    diff = migrations.check_models(cli.resolve_target(config).config)
    if diff:
        raise Exit(f"The models differ from the migrations: {diff}\nRun `inv db.migrate -m MESSAGE`.", code=1)
    print("The models match the migrations.")


@task
def shell(c, config=None):
    """Open psql on the configured database."""
    cli.psql(c, cli.resolve_target(config).config)


@task(help={"yes": "Do not ask for confirmation"})
def reset(c, yes=False, config=None):
    """Drop and rebuild the database (never under production)."""
    target = cli.resolve_target(config, start=False)
    targets.refuse_production(target.config)
    confirm(yes, f"Drop database {target.describe()} and build it again?")
    say(target.ensure_running())
    say(str(lifecycle.reset_database(target)))


ns = Collection("db", start, stop, status, init, migrate, upgrade, downgrade, check, shell, reset)
