"""The commands developers type: ``inv --list`` shows them all, ``inv --help TASK`` one in detail.

Every task takes ``--config NAME`` (default: $APPLICATION_CONFIG, else development). The work lives in
the ``project`` package; this file parses arguments, prints, and turns user mistakes into exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import sys
from pathlib import Path

from invoke import Collection, Exit
from invoke import task as invoke_task

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # invoke does not put the project root on sys.path

from project import operations as ops  # noqa: E402
from project.configuration import ConfigError, load_config  # noqa: E402
from project.local_postgres import ClusterError  # noqa: E402

CONFIG_HELP = "Config name: config/NAME.json (default: $APPLICATION_CONFIG, else development)"


def task(*args, **kwargs):
    """Declare a task whose config and cluster mistakes end in one sentence and exit code 2."""

    def decorate(body):
        @functools.wraps(body)
        def run(c, *a, **kw):
            try:
                return body(c, *a, **kw)
            except (ConfigError, ClusterError) as exc:
                raise Exit(f"Error: {exc}", code=2) from None

        helps = dict(kwargs.pop("help", {}))
        if "config" in inspect.signature(body).parameters:
            helps.setdefault("config", CONFIG_HELP)
        return invoke_task(run, *args, help=helps, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        body, args = args[0], ()
        return decorate(body)
    return decorate


def _config(name: str | None, require_secrets: bool = True):
    return load_config(name, require_secrets=require_secrets)


def _say(message: str | None) -> None:
    if message:
        print(message, flush=True)


def _flask(c, config, command: str, pty: bool = False):
    env = {**config.environ(), "FLASK_APP": "wsgi"}
    return c.run(f"flask {command}", env=env, pty=pty)


# -- top level ----------------------------------------------------------------------------------


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def dev(c, host="127.0.0.1", port=5000, config=None):
    """Run the Flask debug server on an initialised, migrated database."""
    config = _config(config)
    _say(ops.ensure_server(config))
    _say(str(ops.init_database(config)))
    debug = "--debug" if config.get("FLASK_DEBUG", "false").lower() in ("true", "1", "yes", "on") else "--no-debug"
    print(f"Serving on http://{host}:{port} with the '{config.name}' config; Ctrl-C stops it.", flush=True)
    _flask(c, config, f"run {debug} --host {shlex.quote(host)} --port {int(port)}", pty=sys.stdin.isatty())


# -- db -----------------------------------------------------------------------------------------


@task
def db_start(c):
    """Start the local PostgreSQL cluster (created on first use)."""
    cluster = ops.local_cluster()
    created = cluster.init()
    started = cluster.start()
    state = "started" if started else "already running"
    _say(
        f"{'Created; ' if created else ''}local cluster {state} on {cluster.host}:{cluster.port} ({cluster.base_dir})."
    )


@task
def db_stop(c):
    """Stop the local PostgreSQL cluster; its data stays."""
    cluster = ops.local_cluster()
    _say("Local cluster stopped." if cluster.stop() else "Local cluster was not running.")


@task
def db_status(c, config=None):
    """Say whether the local cluster runs, where its data lives, and what the config points at."""
    config = _config(config, require_secrets=False)
    cluster = ops.local_cluster()
    print(f"Local cluster: {cluster.status()}, {cluster.host}:{cluster.port}")
    where = "in the project" if cluster.base_dir.is_relative_to(ROOT) else "outside the project (see README)"
    print(f"Data directory: {cluster.base_dir / 'data'} ({where})")
    points = "the local cluster" if ops.uses_local_cluster(config) else "another server"
    print(f"Config '{config.name}': database '{config['POSTGRES_DB']}' on {points}")


@task
def db_init(c, config=None):
    """Create the configured database if missing and apply every migration."""
    config = _config(config)
    _say(ops.ensure_server(config))
    _say(str(ops.init_database(config)))


@task(help={"message": 'What the migration does, lower-case imperative ("add users table")'})
def db_migrate(c, message, config=None):
    """Generate a migration from the models' changes (read it before committing)."""
    config = _config(config)
    _say(ops.ensure_server(config))
    path = ops.autogenerate(config, message)
    _say(
        f"Wrote {path}; read it before committing." if path else "The models match the database; no migration written."
    )


@task(help={"revision": "Target revision (default: head)"})
def db_upgrade(c, revision="head", config=None):
    """Apply migrations up to a revision."""
    config = _config(config)
    _say(ops.ensure_server(config))
    ops.upgrade(config, revision)
    _say(f"Database '{config['POSTGRES_DB']}' at revision {ops.current_revision(config)}.")


@task(help={"revision": "Target revision (default: -1, one step back)"})
def db_downgrade(c, revision="-1", config=None):
    """Revert migrations down to a revision."""
    config = _config(config)
    _say(ops.ensure_server(config))
    ops.downgrade(config, revision)
    _say(f"Database '{config['POSTGRES_DB']}' at revision {ops.current_revision(config) or 'none (empty)'}.")


@task
def db_check(c, config=None):
    """Exit 1 when the models and the migrations differ."""
    config = _config(config)
    _say(ops.ensure_server(config))
    diff = ops.check_models(config)
    if diff:
        raise Exit(f"The models differ from the migrations: {diff}\nRun `inv db.migrate -m MESSAGE`.", code=1)
    print("The models match the migrations.")


@task
def db_shell(c, config=None):
    """Open psql on the configured database."""
    config = _config(config)
    _say(ops.ensure_server(config))
    _psql(c, config, config["POSTGRES_DB"])


def _psql(c, config, dbname: str) -> None:
    env = {"PGPASSWORD": config.get("POSTGRES_PASSWORD", "")}
    args = ["psql", "-h", config["POSTGRES_HOST"], "-p", config["POSTGRES_PORT"], "-U", config["POSTGRES_USER"], dbname]
    c.run(shlex.join(args), env=env, pty=True)


@task(help={"yes": "Do not ask for confirmation"})
def db_reset(c, yes=False, config=None):
    """Drop the configured database and initialise it again (never under production)."""
    config = _config(config)
    if config.name in ops.PROTECTED_CONFIGS or config["FLASK_CONFIG"] == "production":
        raise Exit(f"Error: refusing to reset the database of the '{config.name}' config.", code=2)
    _confirm(yes, f"Drop database '{config['POSTGRES_DB']}' and build it again?")
    _say(str(ops.reset_database(config)))


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Exit(f"Error: {question} Pass --yes to confirm without a terminal.", code=2)
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise Exit("Nothing changed.", code=1)


# -- config -------------------------------------------------------------------------------------


@task
def config_show(c, config=None):
    """Print the effective settings and where each comes from; secrets masked."""
    from project.config_export import describe

    print(describe(_config(config, require_secrets=False)))


@task
def config_check(c, config=None):
    """Validate every config file and report names one config has and another lacks."""
    from project.configuration import check_configs

    errors, warnings = check_configs()
    for line in warnings:
        print(f"warning: {line}")
    if errors:
        raise Exit("\n".join(f"Error: {e}" for e in errors), code=2)
    print("Every config file is valid.")


ns = Collection(dev)
ns.add_collection(
    Collection(
        "db",
        start=db_start,
        stop=db_stop,
        status=db_status,
        init=db_init,
        migrate=db_migrate,
        upgrade=db_upgrade,
        downgrade=db_downgrade,
        check=db_check,
        shell=db_shell,
        reset=db_reset,
    )
)
ns.add_collection(Collection("config", show=config_show, check=config_check))
ns.configure({"run": {"echo": False}})
os.environ.setdefault("PYTHONUNBUFFERED", "1")
