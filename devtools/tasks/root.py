"""The top-level tasks: serve the app (debug server, production simulation), run Flask commands, start a project."""

from __future__ import annotations

import shlex
from pathlib import Path

from invoke import Collection, Exit

from devtools import cli, lifecycle
from devtools.cli import say, task, whole_number
from project.configuration import as_bool, load_config


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def dev(c, host="127.0.0.1", port="5000", config=None):
    """Serve the app on Flask's debug server, migrating first."""
    port = whole_number("--port", port, 1, 65535)
    target = cli.resolve_target(config)
    say(str(lifecycle.init_database(target)))
    print(f"Serving on http://{host}:{port} with the '{target.config.name}' config; Ctrl-C stops it.", flush=True)
    cli.flask_run(c, target.config, host, port, debug=as_bool(target.config.get("FLASK_DEBUG", "false")))


@task(
    help={
        "dest": "Directory to create (new or empty, outside this project)",
        "package": "Python package name (default: DEST's name)",
        "name": "Project name, the README's title (default: from the package)",
        "database": "Base of the database names: BASE_dev, BASE_test, BASE (default: the package)",
        "no-example": "Leave out the example users app (README: Make it yours)",
    }
)
def new(c, dest, package=None, name=None, database=None, no_example=False):
    """Start your own project in DEST from this one."""
    from devtools import new as generator

    created = generator.create(
        cli.ROOT, Path(dest), package=package, title=name, database=database, with_example=not no_example
    )
    names = created.names
    databases = ", ".join(names.databases)
    print(f"Created {names.title} in {created.dest}: package '{names.package}', databases {databases}.")
    print(
        f"Project name '{names.project_name}' (compose projects, deployments, temporary directories); its development "
        f"cluster listens on 127.0.0.1:{created.port}."
    )
    print(f"Its git repository has one commit ({created.commit}).")
    for note in created.notes:
        print(f"Check: {note}")
    print(f"Next: cd {shlex.quote(str(created.dest))}, then follow its README's Quickstart.")


@task(
    help={
        "host": "Address to listen on",
        "port": "Port to listen on",
        "metrics-port": "Loopback port of the metrics endpoint",
    }
)
def prod(c, host="127.0.0.1", port="8000", metrics_port="9464", config="production"):
    """Simulate production: gunicorn on the local cluster."""
    from devtools import prod as simulation

    port = whole_number("--port", port, 1, 65535)
    metrics_port = whole_number("--metrics-port", metrics_port, 1, 65535)
    plan = simulation.prepare(load_config(config), host=host, port=port, metrics_port=metrics_port)
    for line in plan.messages:
        say(line)
    print(f"Serving the '{plan.config.name}' config through gunicorn on http://{host}:{port}; Ctrl-C stops it.")
    if plan.env.get("METRICS_BIND"):
        print(f"Metrics at http://{plan.env['METRICS_BIND']}/metrics.")
    cli.serve(c, plan.command, plan.env)


@task
def flask(c, config=None):
    """Run any Flask command under a config (-- routes)."""
    args = cli.remainder(c)
    if not args:
        raise Exit("Error: name a Flask command after --, e.g. `inv flask -- routes` or `inv flask -- shell`.", 2)
    cli.serve(c, cli.flask_argv(*args), load_config(config).environ())


ns = Collection(dev, prod, flask, new)
