"""The commands developers type: ``inv --list`` shows them all, ``inv --help TASK`` one in detail.

Every task takes ``--config NAME`` (default: $APPLICATION_CONFIG, else development). The work lives in
the ``project`` package; this file parses arguments, prints, and turns user mistakes into exit code 2.
"""

from __future__ import annotations

import functools
import inspect
import os
import shlex
import shutil
import sys
from pathlib import Path

from invoke import Collection, Exit, Program
from invoke import task as invoke_task
from invoke.parser import ParseError

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # invoke does not put the project root on sys.path

from project import operations as ops  # noqa: E402
from project.configuration import ConfigError, as_bool, load_config  # noqa: E402
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


def _whole_number(flag: str, value, low: int, high: int) -> int:
    """Return ``value`` as an int, or exit 2 with a sentence naming the flag and the valid range."""
    text = str(value).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise Exit(f"Error: {flag} must be a whole number from {low} to {high}, got {value!r}.", code=2)
    return int(text)


def _usage_errors_exit_2() -> None:
    """invoke ends a command-line mistake (unknown task, missing argument) with code 1; make it 2, the usual
    code for usage errors, like every other mistake here."""
    original = Program.parse_tasks

    def parse_tasks(self):
        try:
            return original(self)
        except ParseError as exc:
            raise Exit(f"Error: {exc} See `inv --list`, or `inv --help TASK` for a task's options.", code=2) from None

    Program.parse_tasks = parse_tasks


_usage_errors_exit_2()


def _config(name: str | None, require_secrets: bool = True):
    return load_config(name, require_secrets=require_secrets)


def _ready(name: str | None):
    """Load config ``name`` and start the local cluster when it points there; return the config."""
    config = _config(name)
    _say(ops.ensure_server(config))
    return config


def _say(message: str | None) -> None:
    if message:
        print(message, flush=True)


def _serve(c, argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with a long-running server, so Ctrl-C and SIGTERM reach it directly.

    (Run as invoke's child, an interrupt outside a terminal leaves the server running or invoke failing.)
    """
    if c.config.run.dry:
        print(shlex.join(argv))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(argv[0], argv, {**os.environ, **env})


def _flask_run(c, config, host: str, port: int, debug: bool) -> None:
    # This interpreter's Flask, whether or not its virtualenv is activated.
    argv = [
        sys.executable,
        "-m",
        "flask",
        "run",
        "--debug" if debug else "--no-debug",
        "--host",
        host,
        "--port",
        str(port),
    ]
    _serve(c, argv, {**config.environ(), "FLASK_APP": "wsgi"})


# -- top level ----------------------------------------------------------------------------------


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def dev(c, host="127.0.0.1", port="5000", config=None):
    """Serve the app with the Flask debug server (migrates first)."""
    port = _whole_number("--port", port, 1, 65535)
    config = _ready(config)
    _say(str(ops.init_database(config)))
    print(f"Serving on http://{host}:{port} with the '{config.name}' config; Ctrl-C stops it.", flush=True)
    _flask_run(c, config, host, port, debug=as_bool(config.get("FLASK_DEBUG", "false")))


# -- db -----------------------------------------------------------------------------------------


@task
def db_start(c):
    """Start the local PostgreSQL cluster (created on first use)."""
    cluster = ops.local_cluster()
    created = cluster.init()
    started = cluster.start()
    where = f"{cluster.host}:{cluster.port} ({cluster.base_dir})"
    if started:
        _say(f"{'Created and started' if created else 'Started'} the local cluster on {where}.")
    else:
        _say(f"The local cluster already runs on {where}.")


@task
def db_stop(c):
    """Stop the local PostgreSQL cluster; its data stays."""
    cluster = ops.local_cluster()
    _say("Local cluster stopped." if cluster.stop() else "Local cluster was not running.")


@task
def db_status(c, config=None):
    """Show the local cluster's state and where its data lives."""
    config = _config(config, require_secrets=False)
    cluster = ops.local_cluster()
    print(f"Local cluster: {cluster.status()}, {cluster.host}:{cluster.port}")
    where = "in the project" if cluster.base_dir.is_relative_to(ROOT) else "outside the project (see README)"
    print(f"Data directory: {cluster.base_dir / 'data'} ({where})")
    points = "the local cluster" if ops.uses_local_cluster(config) else "another server"
    print(f"Config '{config.name}': database '{config['POSTGRES_DB']}' on {points}")


@task
def db_init(c, config=None):
    """Create the database if missing and apply all migrations."""
    config = _ready(config)
    _say(str(ops.init_database(config)))


@task(help={"message": 'What the migration does, lower-case imperative ("add users table")'})
def db_migrate(c, message, config=None):
    """Write a new migration from the models' changes."""
    config = _ready(config)
    path = ops.autogenerate(config, message)
    _say(
        f"Wrote {path}; read it before committing." if path else "The models match the database; no migration written."
    )


@task(help={"revision": "Target revision (default: head)"})
def db_upgrade(c, revision="head", config=None):
    """Apply migrations up to a revision."""
    config = _ready(config)
    ops.upgrade(config, revision)
    _say(f"Database '{config['POSTGRES_DB']}' at revision {ops.current_revision(config)}.")


@task(help={"revision": "Target revision (default: -1, one step back)"})
def db_downgrade(c, revision="-1", config=None):
    """Revert migrations down to a revision."""
    config = _ready(config)
    ops.downgrade(config, revision)
    _say(f"Database '{config['POSTGRES_DB']}' at revision {ops.current_revision(config) or 'none (empty)'}.")


@task
def db_check(c, config=None):
    """Exit 1 when the models and the migrations differ."""
    config = _ready(config)
    diff = ops.check_models(config)
    if diff:
        raise Exit(f"The models differ from the migrations: {diff}\nRun `inv db.migrate -m MESSAGE`.", code=1)
    print("The models match the migrations.")


@task
def db_shell(c, config=None):
    """Open psql on the configured database."""
    config = _ready(config)
    _psql(c, config, config["POSTGRES_DB"])


def _psql(c, config, dbname: str) -> None:
    if not c.config.run.dry and shutil.which("psql") is None:
        raise Exit(
            "Error: psql is not installed; install the PostgreSQL client (apt-get install postgresql-client).", 2
        )
    env = {"PGPASSWORD": config.get("POSTGRES_PASSWORD", "")}
    args = ["psql", "-h", config["POSTGRES_HOST"], "-p", config["POSTGRES_PORT"], "-U", config["POSTGRES_USER"], dbname]
    c.run(shlex.join(args), env=env, pty=sys.stdin.isatty())


@task(help={"yes": "Do not ask for confirmation"})
def db_reset(c, yes=False, config=None):
    """Drop and rebuild the database (never under production)."""
    config = _config(config)
    ops.refuse_production(config)
    _confirm(yes, f"Drop database '{config['POSTGRES_DB']}' and build it again?")
    _say(str(ops.reset_database(config)))


def _confirm(yes: bool, question: str, flag: str = "--yes") -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise Exit(f"Error: {question} Pass {flag} to confirm without a terminal.", code=2)
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise Exit("Nothing changed.", code=1)


# -- config -------------------------------------------------------------------------------------


@task
def config_show(c, config=None):
    """Print effective settings and their sources, secrets masked."""
    from project.config_export import describe

    print(describe(_config(config, require_secrets=False)))


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
    from project.config_export import export

    print(export(_config(config, require_secrets=False), format))


# -- scenario -----------------------------------------------------------------------------------


@task
def scenario_list(c, config=None):
    """List scenarios, whether each is loaded, and row counts."""
    from project import scenarios

    config = _ready(config)
    for row in scenarios.listing(config):
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
    import time

    from project import scenarios

    config = _config(config)
    size = None if size is None else _whole_number("--size", size, 0, 100_000_000)
    seed = _whole_number("--seed", seed, 0, 2**63)
    scenarios.get(name)
    _say(ops.ensure_server(config))
    if scenarios.exists(config, name) and not force:
        _confirm(False, f"Scenario database '{scenarios.database_name(config, name)}' exists. Replace it?", "--force")
    scenarios.progress_factory = _progress_bar()
    started = time.perf_counter()
    report = scenarios.load(config, name, size=size, seed=seed, force=True)
    counts = ", ".join(f"{n} {t}" for t, n in report.counts.items()) or "no rows"
    print(f"Scenario '{name}' loaded into '{report.database}' ({counts}) in {time.perf_counter() - started:.1f} s.")
    print(f"Connect: inv scenario.shell {name}   or   inv scenario.serve {name}")
    print(
        f"     or: psql -h {config['POSTGRES_HOST']} -p {config['POSTGRES_PORT']} "
        f"-U {config['POSTGRES_USER']} {report.database}"
    )


def _progress_bar():
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return lambda **kw: tqdm(**kw, leave=False)


@task(help={"name": "Scenario name"})
def scenario_shell(c, name, config=None):
    """Open psql on a loaded scenario's database."""
    from project import scenarios

    config = _config(config)
    _require_loaded(config, name)
    _psql(c, config, scenarios.database_name(config, name))


@task(help={"name": "Scenario name", "host": "Address to listen on", "port": "Port to listen on"})
def scenario_serve(c, name, host="127.0.0.1", port="5000", config=None):
    """Run the debug server against a loaded scenario's database."""
    from project import scenarios

    port = _whole_number("--port", port, 1, 65535)
    config = _config(config)
    _require_loaded(config, name)
    config = config.replace(POSTGRES_DB=scenarios.database_name(config, name))
    print(f"Serving scenario '{name}' on http://{host}:{port}; Ctrl-C stops it.", flush=True)
    _flask_run(c, config, host, port, debug=True)


def _require_loaded(config, name):
    from project import scenarios

    scenarios.get(name)
    _say(ops.ensure_server(config))
    if not scenarios.exists(config, name):
        raise Exit(f"Error: scenario '{name}' is not loaded; run `inv scenario.load {name}` first.", code=2)


@task(help={"name": "Scenario name"})
def scenario_reset(c, name, config=None):
    """Restore a scenario to its freshly loaded state, fast."""
    import time

    from project import scenarios

    config = _ready(config)
    started = time.perf_counter()
    database = scenarios.reset(config, name)
    print(f"Scenario '{name}' reset ('{database}') in {time.perf_counter() - started:.2f} s.")


@task(help={"name": "Scenario name"})
def scenario_drop(c, name, config=None):
    """Drop a scenario's database and its saved template."""
    from project import scenarios

    config = _ready(config)
    dropped = scenarios.drop(config, name)
    print(f"Scenario '{name}' dropped." if dropped else f"Scenario '{name}' was not loaded.")


# -- production simulation and deploy checks ---------------------------------------------------


@task(help={"host": "Address to listen on", "port": "Port to listen on"})
def prod(c, host="127.0.0.1", port="8000", config="production"):
    """Simulate production: gunicorn on the local cluster."""
    from project import production

    port = _whole_number("--port", port, 1, 65535)
    plan = production.prepare(_config(config), host=host, port=port)
    for line in plan.messages:
        _say(line)
    print(f"Serving the '{plan.config.name}' config through gunicorn on http://{host}:{port}; Ctrl-C stops it.")
    _serve(c, plan.command, plan.env)


@task
def deploy_check(c, config="production"):
    """Check a config is fit for production; exit 1 if not."""
    from project import deploy_checks

    loaded = load_config(config, require_secrets=False)
    found = deploy_checks.problems(loaded, loaded)
    if found:
        raise Exit("\n".join(f"- {p}" for p in found) + f"\n{len(found)} problem(s) in the '{loaded.name}' config.", 1)
    print(f"The '{loaded.name}' config passes every deployment check.")


# -- compose ------------------------------------------------------------------------------------


def _compose(c, config, *args, pty=False):
    from project import compose

    config = load_config(config, require_secrets=False)
    dry = bool(c.config.run.dry)
    command = compose.command(config.name, *args, dry=dry)
    compose.engine_running(dry)
    c.run(shlex.join(command), env=config.environ(), pty=pty)


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
ns.add_task(prod)
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
        up=compose_up,
        down=compose_down,
        build=compose_build,
        logs=compose_logs,
        ps=compose_ps,
        exec=compose_exec,
        run=compose_run,
    )
)
ns.add_collection(Collection("deploy", check=deploy_check))
ns.configure({"run": {"echo": False}})
os.environ.setdefault("PYTHONUNBUFFERED", "1")
