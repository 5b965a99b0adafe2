"""``inv db.*``: the local PostgreSQL cluster and a config's database (create, migrate, reset, psql)."""

from __future__ import annotations

from invoke import Collection, Exit

from devtools import cli, lifecycle, migrations
from devtools import target as targets
from devtools.cli import confirm, say, task
from devtools.errors import ClusterError
from project.configuration import load_config


@task
def start(c):
    """Start the local PostgreSQL cluster (created on first use)."""
    cluster = targets.local_cluster()
    created = cluster.init()
    started = cluster.start()
    where = f"{cluster.host}:{cluster.port} ({cluster.base_dir})"
    if started:
        say(f"{'Created and started' if created else 'Started'} the local cluster on {where}.")
    else:
        say(f"The local cluster already runs on {where}.")


@task
def stop(c):
    """Stop the local PostgreSQL cluster; its data stays."""
    say("Local cluster stopped." if targets.local_cluster().stop() else "Local cluster was not running.")


@task
def status(c, config=None):
    """Show the local cluster's state and where its data lives."""
    config = load_config(config, require_secrets=False)
    cluster = targets.local_cluster()
    try:
        found, state = cluster.binaries(), str(cluster.status())
    except ClusterError as exc:  # no binaries of the declared version: say so, and what to install
        found, state = f"declared {cluster.major}, not found: {exc}", "unknown (no binaries to ask)"
    print(f"Local cluster: {state}, {cluster.host}:{cluster.port}")
    where = "in the project" if cluster.base_dir.is_relative_to(cli.ROOT) else "outside the project (see README)"
    print(f"Data directory: {cluster.base_dir / 'data'} ({where})")
    points = "the local cluster" if targets.resolve(config, cluster).cluster else "another server"
    print(f"Config '{config.name}': database '{config['POSTGRES_DB']}' on {points}")
    print(f"PostgreSQL: {found}")


@task
def init(c, config=None):
    """Create the database if missing and apply all migrations."""
    say(str(lifecycle.init_database(cli.resolve_target(config))))


@task(help={"message": 'What the migration does, lower-case imperative ("add users table")'})
def migrate(c, message, config=None):
    """Write a new migration from the models' changes."""
    path = migrations.autogenerate(cli.resolve_target(config).config, message)
    say(f"Wrote {path}; read it before committing." if path else "The models match the database; no migration written.")


@task(help={"revision": "Target revision (default: head)"})
def upgrade(c, revision="head", config=None):
    """Apply migrations up to a revision."""
    target = cli.resolve_target(config)
    migrations.upgrade(target.config, revision)
    say(f"Database '{target.database}' at revision {migrations.current_revision(target.config)}.")


@task(help={"revision": "Target revision (default: -1, one step back)"})
def downgrade(c, revision="-1", config=None):
    """Revert migrations down to a revision."""
    target = cli.resolve_target(config)
    migrations.downgrade(target.config, revision)
    say(f"Database '{target.database}' at revision {migrations.current_revision(target.config) or 'none (empty)'}.")


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
