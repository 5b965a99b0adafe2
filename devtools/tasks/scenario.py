"""``inv scenario.*``: build, open, serve, reset and drop the scenario databases (scenarios/NAME.py)."""

from __future__ import annotations

import time

from invoke import Collection

from devtools import cli
from devtools.cli import confirm, task, whole_number


@task(name="list")
def list_(c, config=None):
    """List scenarios, whether each is loaded, and row counts."""
    from devtools.scenarios import runner

    for row in runner.listing(cli.resolve_target(config)):
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
def load(c, name, size=None, seed="1", force=False, config=None):
    """Build a scenario database from empty: migrate and fill."""
    from devtools.scenarios import catalogue, runner

    size = None if size is None else whole_number("--size", size, 0, 100_000_000)
    seed = whole_number("--seed", seed, 0, 2**63)
    catalogue.get(name)
    target = cli.resolve_target(config)
    started = time.perf_counter()
    report = runner.load(
        target,
        name,
        size=size,
        seed=seed,
        force=force,
        progress=cli.progress_bar(),
        confirm=lambda database: confirm(False, f"Scenario database '{database}' exists. Replace it?", "--force"),
    )
    counts = ", ".join(f"{n} {t}" for t, n in report.counts.items()) or "no rows"
    print(f"Scenario '{name}' loaded into '{report.database}' ({counts}) in {time.perf_counter() - started:.1f} s.")
    print(f"Connect: inv scenario.shell {name}   or   inv scenario.serve {name}")
    print(f"     or: {cli.psql_command(target.config, report.database)}")


@task(help={"name": "Scenario name"})
def shell(c, name, config=None):
    """Open psql on a loaded scenario's database."""
    from devtools.scenarios import catalogue, runner

    catalogue.get(name)
    cli.psql(c, runner.loaded(cli.resolve_target(config), name).config)


@task(help={"name": "Scenario name", "host": "Address to listen on", "port": "Port to listen on"})
def serve(c, name, host="127.0.0.1", port="5000", config=None):
    """Run the debug server on a loaded scenario's database."""
    from devtools.scenarios import catalogue, runner

    port = whole_number("--port", port, 1, 65535)
    catalogue.get(name)
    target = runner.loaded(cli.resolve_target(config), name)
    print(f"Serving scenario '{name}' on http://{host}:{port}; Ctrl-C stops it.", flush=True)
    cli.flask_run(c, target.config, host, port, debug=True)


@task(help={"name": "Scenario name"})
def reset(c, name, config=None):
    """Restore a scenario to its freshly loaded state, fast."""
    from devtools.scenarios import runner

    target = cli.resolve_target(config)
    started = time.perf_counter()
    database = runner.reset(target, name)
    print(f"Scenario '{name}' reset ('{database}') in {time.perf_counter() - started:.2f} s.")


@task(help={"name": "Scenario name"})
def drop(c, name, config=None):
    """Drop a scenario's database and its saved template."""
    from devtools.scenarios import runner

    dropped = runner.drop(cli.resolve_target(config), name)
    print(f"Scenario '{name}' dropped." if dropped else f"Scenario '{name}' was not loaded.")


ns = Collection("scenario", list_, load, shell, serve, reset, drop)
