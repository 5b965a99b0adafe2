"""The commands developers type: ``inv --list`` shows them all, ``inv --help TASK`` one in detail.

Every task takes ``--config NAME`` (default: $APPLICATION_CONFIG, else development). This file declares the
tasks, parses their arguments and prints; the work lives in the ``devtools`` package, which turns user
mistakes into one sentence and exit code 2.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

from invoke import Collection, Exit

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # invoke does not put the project root on sys.path

from devtools import cli, lifecycle, migrations  # noqa: E402
from devtools import target as targets  # noqa: E402
from devtools.cli import confirm, say, task, whole_number  # noqa: E402
from project.configuration import as_bool, load_config  # noqa: E402

cli.exit_2_on_usage_errors()


def _target(config_name: str | None, start: bool = True) -> targets.Target:
    """Load a config, resolve where its database lives (once per command) and start the local cluster there."""
    target = targets.resolve(load_config(config_name))
    if start:
        say(target.ensure_running())
    return target


def _flask_run(c, config, host: str, port: int, debug: bool) -> None:
    argv = cli.flask_argv("run", "--debug" if debug else "--no-debug", "--host", host, "--port", str(port))
    cli.serve(c, argv, config.environ())


# -- top level ----------------------------------------------------------------------------------


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def dev(c, host="127.0.0.1", port="5000", config=None):
    """Serve the app with the Flask debug server (migrates first)."""
    port = whole_number("--port", port, 1, 65535)
    target = _target(config)
    say(str(lifecycle.init_database(target)))
    print(f"Serving on http://{host}:{port} with the '{target.config.name}' config; Ctrl-C stops it.", flush=True)
    _flask_run(c, target.config, host, port, debug=as_bool(target.config.get("FLASK_DEBUG", "false")))


@task(
    help={
        "dest": "Directory to create (new or empty, outside this project)",
        "package": "Python package name (default: DEST's name)",
        "name": "Project name, the README's title (default: from the package)",
        "database": "Base of the database names: BASE_dev, BASE_test, BASE (default: the package)",
    }
)
def new(c, dest, package=None, name=None, database=None):
    """Start your own project in DEST from this one."""
    from devtools import new as generator

    created = generator.create(ROOT, Path(dest), package=package, title=name, database=database)
    names = created.names
    databases = ", ".join(names.databases)
    print(f"Created {names.title} in {created.dest}: package '{names.package}', databases {databases}.")
    print(f"Its git repository has one commit ({created.commit}).")
    for note in created.notes:
        print(f"Check: {note}")
    print(f"Next: cd {shlex.quote(str(created.dest))}, then follow its README's Quickstart.")


# -- db -----------------------------------------------------------------------------------------


@task
def db_start(c):
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
def db_stop(c):
    """Stop the local PostgreSQL cluster; its data stays."""
    say("Local cluster stopped." if targets.local_cluster().stop() else "Local cluster was not running.")


@task
def db_status(c, config=None):
    """Show the local cluster's state and where its data lives."""
    config = load_config(config, require_secrets=False)
    cluster = targets.local_cluster()
    print(f"Local cluster: {cluster.status()}, {cluster.host}:{cluster.port}")
    where = "in the project" if cluster.base_dir.is_relative_to(ROOT) else "outside the project (see README)"
    print(f"Data directory: {cluster.base_dir / 'data'} ({where})")
    points = "the local cluster" if targets.resolve(config, cluster).cluster else "another server"
    print(f"Config '{config.name}': database '{config['POSTGRES_DB']}' on {points}")
    print(f"PostgreSQL: {cluster.version()} ({cluster.bindir}); declared: {config.get('POSTGRES_MAJOR_VERSION', '-')}")
    say(cluster.version_note())


@task
def db_init(c, config=None):
    """Create the database if missing and apply all migrations."""
    say(str(lifecycle.init_database(_target(config))))


@task(help={"message": 'What the migration does, lower-case imperative ("add users table")'})
def db_migrate(c, message, config=None):
    """Write a new migration from the models' changes."""
    path = migrations.autogenerate(_target(config).config, message)
    say(f"Wrote {path}; read it before committing." if path else "The models match the database; no migration written.")


@task(help={"revision": "Target revision (default: head)"})
def db_upgrade(c, revision="head", config=None):
    """Apply migrations up to a revision."""
    target = _target(config)
    migrations.upgrade(target.config, revision)
    say(f"Database '{target.database}' at revision {migrations.current_revision(target.config)}.")


@task(help={"revision": "Target revision (default: -1, one step back)"})
def db_downgrade(c, revision="-1", config=None):
    """Revert migrations down to a revision."""
    target = _target(config)
    migrations.downgrade(target.config, revision)
    say(f"Database '{target.database}' at revision {migrations.current_revision(target.config) or 'none (empty)'}.")


@task
def db_check(c, config=None):
    """Exit 1 when the models and the migrations differ."""
    diff = migrations.check_models(_target(config).config)
    if diff:
        raise Exit(f"The models differ from the migrations: {diff}\nRun `inv db.migrate -m MESSAGE`.", code=1)
    print("The models match the migrations.")


@task
def db_shell(c, config=None):
    """Open psql on the configured database."""
    _psql(c, _target(config).config)


def _psql(c, config) -> None:
    from project.settings import connection_params, libpq_environ

    if not c.config.run.dry and cli.which("psql") is None:
        raise Exit(
            "Error: psql is not installed; install the PostgreSQL client (apt-get install postgresql-client).", 2
        )
    c.run("psql", env=libpq_environ(connection_params(config)), pty=sys.stdin.isatty())


@task(help={"yes": "Do not ask for confirmation"})
def db_reset(c, yes=False, config=None):
    """Drop and rebuild the database (never under production)."""
    target = _target(config, start=False)
    targets.refuse_production(target.config)
    confirm(yes, f"Drop database {target.describe()} and build it again?")
    say(target.ensure_running())
    say(str(lifecycle.reset_database(target)))


# -- config -------------------------------------------------------------------------------------


@task
def config_show(c, config=None):
    """Print effective settings and their sources, secrets masked."""
    from devtools.config_export import describe

    print(describe(load_config(config, require_secrets=False)))


@task
def config_check(c, config=None):
    """Validate all config files and compare their names."""
    from project.configuration import check_configs

    errors, warnings = check_configs()
    for line in warnings:
        print(f"warning: {line}")
    if errors:
        raise Exit("\n".join(f"Error: {e}" for e in errors), code=2)
    print("Every config file is valid.")


@task(help={"format": "ecs (container definition arrays), env (env-file) or tfvars (Terraform JSON)"})
def config_export(c, format="ecs", config=None):
    """Export a config as ECS arrays, an env-file or tfvars."""
    from devtools.config_export import export

    print(export(load_config(config, require_secrets=False), format))


# -- scenario -----------------------------------------------------------------------------------


@task
def scenario_list(c, config=None):
    """List scenarios, whether each is loaded, and row counts."""
    from devtools import scenarios

    for row in scenarios.listing(_target(config)):
        counts = ", ".join(f"{t}: {n}" for t, n in row.counts.items()) if row.loaded else "-"
        state = "loaded" if row.loaded else "not loaded"
        print(f"{row.name:<10} {state:<11} {counts:<18} {row.description}")


@task(
    help={
        "name": "Scenario name (scenarios/NAME.py)",
        "size": "How many rows to make (default: the scenario's own)",
        "seed": "Random seed; the same seed gives the same data",
        "force": "Replace the scenario's database if it exists",
    }
)
def scenario_load(c, name, size=None, seed="1", force=False, config=None):
    """Build a scenario database from empty: migrate and fill."""
    from devtools import scenarios

    size = None if size is None else whole_number("--size", size, 0, 100_000_000)
    seed = whole_number("--seed", seed, 0, 2**63)
    scenarios.get(name)
    target = _target(config)
    if scenarios.exists(target, name) and not force:
        confirm(
            False, f"Scenario database '{scenarios.database_name(target.config, name)}' exists. Replace it?", "--force"
        )
    scenarios.progress_factory = cli.progress_bar()
    started = time.perf_counter()
    report = scenarios.load(target, name, size=size, seed=seed, force=True)
    counts = ", ".join(f"{n} {t}" for t, n in report.counts.items()) or "no rows"
    print(f"Scenario '{name}' loaded into '{report.database}' ({counts}) in {time.perf_counter() - started:.1f} s.")
    print(f"Connect: inv scenario.shell {name}   or   inv scenario.serve {name}")
    config = target.config
    print(
        f"     or: psql -h {config['POSTGRES_HOST']} -p {config['POSTGRES_PORT']} "
        f"-U {config['POSTGRES_USER']} {report.database}"
    )


def _loaded_scenario(config_name: str | None, name: str) -> targets.Target:
    """Return the target pointed at scenario ``name``'s database, or exit 2 when it is not loaded."""
    from devtools import scenarios

    scenarios.get(name)
    target = _target(config_name)
    if not scenarios.exists(target, name):
        raise Exit(f"Error: scenario '{name}' is not loaded; run `inv scenario.load {name}` first.", code=2)
    return target.with_database(scenarios.database_name(target.config, name))


@task(help={"name": "Scenario name"})
def scenario_shell(c, name, config=None):
    """Open psql on a loaded scenario's database."""
    _psql(c, _loaded_scenario(config, name).config)


@task(help={"name": "Scenario name", "host": "Address to listen on", "port": "Port to listen on"})
def scenario_serve(c, name, host="127.0.0.1", port="5000", config=None):
    """Run the debug server against a loaded scenario's database."""
    port = whole_number("--port", port, 1, 65535)
    target = _loaded_scenario(config, name)
    print(f"Serving scenario '{name}' on http://{host}:{port}; Ctrl-C stops it.", flush=True)
    _flask_run(c, target.config, host, port, debug=True)


@task(help={"name": "Scenario name"})
def scenario_reset(c, name, config=None):
    """Restore a scenario to its freshly loaded state, fast."""
    from devtools import scenarios

    target = _target(config)
    started = time.perf_counter()
    database = scenarios.reset(target, name)
    print(f"Scenario '{name}' reset ('{database}') in {time.perf_counter() - started:.2f} s.")


@task(help={"name": "Scenario name"})
def scenario_drop(c, name, config=None):
    """Drop a scenario's database and its saved template."""
    from devtools import scenarios

    dropped = scenarios.drop(_target(config), name)
    print(f"Scenario '{name}' dropped." if dropped else f"Scenario '{name}' was not loaded.")


# -- production simulation and deploy checks ---------------------------------------------------


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def prod(c, host="127.0.0.1", port="8000", config="production"):
    """Simulate production: gunicorn on the local cluster."""
    from devtools import prod as simulation

    port = whole_number("--port", port, 1, 65535)
    plan = simulation.prepare(load_config(config), host=host, port=port)
    for line in plan.messages:
        say(line)
    print(f"Serving the '{plan.config.name}' config through gunicorn on http://{host}:{port}; Ctrl-C stops it.")
    cli.serve(c, plan.command, plan.env)


@task
def flask(c, config=None):
    """Run any Flask command under a config (-- routes)."""
    args = cli.remainder(c)
    if not args:
        raise Exit("Error: name a Flask command after --, e.g. `inv flask -- routes` or `inv flask -- shell`.", 2)
    cli.serve(c, cli.flask_argv(*args), load_config(config).environ())


@task(
    help={
        "replicas": "Also check the connection budget for this many web replicas",
        "max_connections": "The database server's max_connections (default 100)",
        "reserved": "Connections kept free for superusers, psql and monitoring (default 10)",
        "cpus": "CPUs per replica, to size GUNICORN_WORKERS=0 (default: the rendered web size)",
        "surge": "Extra replicas during a rolling update (default 1)",
        "config": "Config name: config/NAME.json (default production)",
    }
)
def deploy_check(c, config="production", replicas=None, max_connections="100", reserved="10", cpus=None, surge="1"):
    """Check a config is fit for production; exit 1 if not."""
    from project import deploy_checks

    loaded = load_config(config, require_secrets=False)
    found = deploy_checks.problems(loaded, loaded)
    if replicas is not None:
        from devtools import deploy

        budget = deploy.budget(
            loaded,
            whole_number("--replicas", replicas, 1, 10_000),
            max_connections=whole_number("--max-connections", max_connections, 1, 262_143),
            reserved=whole_number("--reserved", reserved, 0, 262_143),
            cpus=deploy.parse_cpus(cpus),
            surge=whole_number("--surge", surge, 0, 10_000),
        )
        print("Connection budget:\n" + "\n".join(f"  {line}" for line in budget.lines()))
        found += budget.problems()
    if found:
        raise Exit("\n".join(f"- {p}" for p in found) + f"\n{len(found)} problem(s) in the '{loaded.name}' config.", 1)
    print(f"The '{loaded.name}' config passes every deployment check.")
    if replicas is None:
        print("The connection budget was not checked; pass --replicas N to check it.")


@task(
    help={
        "target": "ecs (task definitions) or kubernetes (manifests)",
        "image": "The image to deploy, with its tag or digest (REGISTRY/NAME:TAG)",
        "output": "Folder to write one JSON file per definition into (default: print them)",
        "name": "Name prefix of the definitions (default app)",
        "replicas": "Kubernetes: the Deployment's replicas (default 2)",
        "region": "ECS: the region of the logs (default: the secrets' ARNs' region)",
        "execution_role": "ECS: the execution role's ARN (reads the secrets, writes the logs)",
        "config": "Config name: config/NAME.json (default production)",
    }
)
def deploy_render(
    c,
    target,
    image="",
    output=None,
    name="app",
    replicas="2",
    region=None,
    execution_role=None,
    config="production",
):
    """Render ECS task definitions or Kubernetes manifests."""
    from devtools import deploy

    documents = deploy.render(
        load_config(config, require_secrets=False),
        target,
        image,
        name=name,
        replicas=whole_number("--replicas", replicas, 1, 10_000),
        region=region,
        execution_role=execution_role,
    )
    for path in deploy.write(documents, Path(output) if output else None):
        print(f"Wrote {path}")


# -- compose ------------------------------------------------------------------------------------


def _compose(c, config, *args, pty=False):
    from devtools import compose

    dry = bool(c.config.run.dry)
    config = compose.load(config, args, dry)
    command = compose.command(config.name, *args, dry=dry)
    compose.engine_running(dry)
    c.run(shlex.join(command), env=compose.environ(config), pty=pty)


@task
def compose_any(c, config=None):
    """Run any compose subcommand: inv compose.any -- ps -a."""
    args = cli.remainder(c)
    if not args:
        raise Exit("Error: name a compose subcommand after --, e.g. `inv compose.any --config production -- ps -a`.", 2)
    _compose(c, config, *args, pty=sys.stdin.isatty())


@task(help={"build": "Build images before starting", "detach": "Run in the background"})
def compose_up(c, build=False, detach=False, config=None):
    """Start the config's compose stack (docker/CONFIG.yml)."""
    _compose(c, config, "up", *(["--build"] if build else []), *(["--detach"] if detach else []), pty=not detach)


@task(help={"volumes": "Also delete the stack's volumes (its database data)"})
def compose_down(c, volumes=False, config=None):
    """Stop and remove the config's compose stack."""
    _compose(c, config, "down", *(["--volumes"] if volumes else []))


@task
def compose_build(c, config=None):
    """Build the config's images."""
    _compose(c, config, "build")


@task(help={"service": "Only this service's logs"})
def compose_logs(c, service="", config=None):
    """Follow the stack's logs."""
    _compose(c, config, "logs", "--follow", *([service] if service else []), pty=True)


@task
def compose_ps(c, config=None):
    """List the stack's containers."""
    _compose(c, config, "ps")


@task(help={"service": "Service name (web, db, ...)", "command": "Command to run in it"})
def compose_exec(c, service, command, config=None):
    """Run a command in a running service's container."""
    _compose(c, config, "exec", service, *shlex.split(command), pty=True)


@task(help={"service": "Service name (web, db, ...)", "command": "Command to run"})
def compose_run(c, service, command, config=None):
    """Run a one-off command in a new container of a service."""
    _compose(c, config, "run", "--rm", service, *shlex.split(command), pty=True)


ns = Collection(dev, prod, flask)
ns.add_task(new)
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
ns.add_collection(Collection("config", show=config_show, check=config_check, export=config_export))
ns.add_collection(
    Collection(
        "scenario",
        list=scenario_list,
        load=scenario_load,
        shell=scenario_shell,
        serve=scenario_serve,
        reset=scenario_reset,
        drop=scenario_drop,
    )
)
ns.add_collection(
    Collection(
        "compose",
        any=compose_any,
        up=compose_up,
        down=compose_down,
        build=compose_build,
        logs=compose_logs,
        ps=compose_ps,
        exec=compose_exec,
        run=compose_run,
    )
)
ns.add_collection(Collection("deploy", check=deploy_check, render=deploy_render))
ns.configure({"run": {"echo": False}})
