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
    """Start the local PostgreSQL cluster, creating it first."""
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


@task(help={"output": "File to write (default: .local/backups/DATABASE-CONFIG-REVISION-TIME.dump)"})
def dump(c, config=None, output=None):
    """Dump the database to a file (pg_dump's custom format)."""
    from devtools.backups.dump import dump as dump_database

    say(str(dump_database(cli.resolve_target(config), output=output, progress=cli.progress_bar())))


@task(
    help={
        "file": "A dump made by `inv db.dump` (or `pg_dump --format=custom`)",
        "database": "Database to restore into (default: the config's)",
        "replace": "Replace that database when it exists (never under production)",
    }
)
def restore(c, file, config=None, database=None, replace=False):
    """Restore a dump into a new database."""
    from devtools.backups.restore import restore as restore_database

    say(str(restore_database(file, cli.resolve_target(config), database=database, replace=replace)))


@task(
    help={
        "dry_run": "Say what would be done, and do nothing",
        "method": "auto (pg_upgrade when the new binaries have it), pg_upgrade, or dump (dump and restore)",
    }
)
def upgrade_cluster(c, dry_run=False, method="auto"):
    """Move the local cluster to the declared PostgreSQL major."""
    from devtools.postgres import upgrade as upgrading

    cluster = targets.local_cluster()
    plan = upgrading.plan(cluster, method.replace("-", "_"))
    if plan is None:
        found = cluster.data_major()
        state = f"is already at PostgreSQL {found}" if found else "holds no data"
        say(f"The local cluster in {cluster.base_dir} {state}: nothing to move.")
        return
    say(f"{'Would do' if dry_run else 'Doing'}: {plan}")
    if not dry_run:
        moved = upgrading.upgrade(cluster, plan)
        say(f"Done: the cluster now runs PostgreSQL {moved.data_major()}; when all is well, remove {plan.aside}.")


ns = Collection(
    "db", start, stop, status, init, migrate, upgrade, downgrade, check, shell, reset, dump, restore, upgrade_cluster
)
