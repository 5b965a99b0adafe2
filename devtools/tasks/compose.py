"""``inv compose.*``: the config's Docker Compose stack (docker/CONFIG.yml)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from invoke import Collection, Exit

from devtools import cli
from devtools.cli import say, task


def _compose(c, config, *args, pty=False):
    from devtools import compose

    argv, env = compose.invocation(config, args, dry=bool(c.config.run.dry))
    c.run(shlex.join(argv), env=env, pty=pty)


@task(name="any")
def any_(c, config=None):
    """Run any compose subcommand: inv compose.any -- ps -a."""
    args = cli.remainder(c)
    if not args:
        raise Exit("Error: name a compose subcommand after --, e.g. `inv compose.any --config production -- ps -a`.", 2)
    _compose(c, config, *args, pty=sys.stdin.isatty())


@task(help={"build": "Build images before starting", "detach": "Run in the background"})
def up(c, build=False, detach=False, config=None):
    """Start the config's compose stack (docker/CONFIG.yml)."""
    _compose(c, config, "up", *(["--build"] if build else []), *(["--detach"] if detach else []), pty=not detach)


@task(help={"volumes": "Also delete the stack's volumes (its database data)"})
def down(c, volumes=False, config=None):
    """Stop and remove the config's compose stack."""
    _compose(c, config, "down", *(["--volumes"] if volumes else []))


@task
def build(c, config=None):
    """Build the config's images."""
    _compose(c, config, "build")


@task(help={"service": "Only this service's logs"})
def logs(c, service="", config=None):
    """Follow the stack's logs."""
    _compose(c, config, "logs", "--follow", *([service] if service else []), pty=True)


@task
def ps(c, config=None):
    """List the stack's containers."""
    _compose(c, config, "ps")


@task(name="exec", help={"service": "Service name (web, db, ...)", "command": "Command to run in it"})
def exec_(c, service, command, config=None):
    """Run a command in a running service's container."""
    _compose(c, config, "exec", service, *shlex.split(command), pty=True)


@task(help={"service": "Service name (web, db, ...)", "command": "Command to run"})
def run(c, service, command, config=None):
    """Run a one-off command in a new container of a service."""
    _compose(c, config, "run", "--rm", service, *shlex.split(command), pty=True)


def _stack_database(c, config, args):
    """Return the stack's db service for ``config`` and the config (its secrets required when ``args`` start
    containers)."""
    from devtools import compose
    from devtools.backups.stack import StackDatabase

    loaded = compose.load(config, args)
    compose.engine_running()
    base = compose.command(loaded.name)
    return StackDatabase(base, compose.environ(loaded), loaded["POSTGRES_DB"], compose.DOCKER_DIR.parent), loaded


@task(help={"output": "File to write (default: .local/backups/DATABASE-CONFIG-stack-TIME.dump)"})
def backup(c, config=None, output=None):
    """Back up the stack's database to a file on this machine."""
    from devtools.backups import files, stack

    db, loaded = _stack_database(c, config, ["exec"])
    path = Path(output) if output else stack.default_path(files.BACKUP_DIR, loaded.name, db.database)
    size = stack.backup(db, path)
    say(f"Backed up database '{db.database}' of the '{loaded.name}' stack to {path} ({size:,} bytes).")


@task(help={"file": "A backup made by `inv compose.backup` or `inv db.dump`"})
def restore(c, file, config=None):
    """Restore a backup into the stack's fresh database."""
    from devtools.backups import stack
    from devtools.backups.archive import read_header

    read_header(Path(file))  # a file that is no dump is refused before Docker is asked anything
    db, loaded = _stack_database(c, config, ["up"])
    stack.restore(db, Path(file), owner=loaded.get("POSTGRES_MIGRATION_USER") or loaded["POSTGRES_USER"])
    say(f"Restored {file} into database '{db.database}' of the '{loaded.name}' stack; starting the rest.")
    _compose(c, config, "up", "--detach")


ns = Collection("compose", any_, up, down, build, logs, ps, exec_, run, backup, restore)
