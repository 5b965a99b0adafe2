"""P5, P6 and M1: scenario load against a bulk insert, reset against a full rebuild, and the load's peak memory.

On a durable, on-disk cluster, as a developer's local cluster is.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import textwrap
import time

from tests.benchmarks.harness import Measurement, ratio_spread, server_with_database, time_spent_in, timed
from tests.helpers import ROOT

SIZE = 100_000


def bulk_insert(target, size: int) -> float:
    """Insert the users scenario's ``size`` rows into a fresh migrated database with SQLAlchemy's bulk insert();
    return the seconds spent making and inserting them."""
    import random

    from sqlalchemy import insert

    from devtools import lifecycle
    from devtools.databases import admin_cursor, drop_database, owner_mark
    from devtools.scenarios import catalogue
    from project import create_app
    from project.extensions import db
    from project.models import User

    bulk = target.with_database("bench_bulk")
    lifecycle.init_database(bulk)
    app = create_app("testing", overrides=bulk.config)
    with app.app_context():
        # Making the rows counts on both sides: the scenario's load makes them too.
        users = catalogue.get("users").module
        started = time.perf_counter()
        rows = [{"email": e, "name": n, "created_at": c} for e, n, c in users.rows(size, random.Random(1))]
        with db.engine.begin() as connection:
            connection.execute(insert(User), rows)
        elapsed = time.perf_counter() - started
        db.engine.dispose()
    with admin_cursor(target.admin()) as cur:
        drop_database(cur, "bench_bulk", mark=owner_mark(target.config.name))
    return elapsed


def measure_loads(target) -> tuple[list[float], list[float], dict[str, float]]:
    """Time three loads against three bulk inserts; return both and the time the loads spent in their steps."""
    from devtools import migrations
    from devtools import scenarios as scenario_package
    from devtools.scenarios import runner

    def load():
        runner.load(target, "users", size=SIZE, force=True)

    load()
    loads, bulks = [], []
    # copy_rows as the scenario module imports it when each load runs it afresh.
    with (
        time_spent_in(scenario_package, ("copy_rows",)) as spent,
        time_spent_in(runner, ("create_database", "drop_database"), spent),
        time_spent_in(migrations.Migrations, ("upgrade",), spent),
    ):
        for _ in range(3):
            loads.append(timed(load))
            bulks.append(bulk_insert(target, SIZE))
    return loads, bulks, spent


def settled(target, step):
    """Return a function that runs ``step`` once the background copy the last load or reset began has finished
    (as it has when a developer resets after trying some queries), and returns the seconds ``step`` took."""
    from devtools.scenarios import runner

    def run():
        runner.wait_for_refill(target, "users")
        started = time.perf_counter()
        step()
        return time.perf_counter() - started

    return run


def measure_resets(target) -> dict[str, list[float]]:
    """Time three resets against three full rebuilds, with the part of a reset that starts the background copy
    and the copy itself."""
    from devtools.scenarios import runner

    times: dict[str, list[float]] = {"resets": [], "rebuilds": [], "refills": [], "starts": []}
    for _ in range(3):
        with time_spent_in(runner, ("start_refill",)) as spent_starting:
            times["resets"].append(settled(target, lambda: runner.reset(target, "users"))())
        times["starts"].append(spent_starting.get("start_refill", 0.0))
        times["refills"].append(timed(lambda: runner.wait_for_refill(target, "users")))
        times["rebuilds"].append(settled(target, lambda: runner.load(target, "users", size=SIZE, force=True))())
    return times


def connecting(target) -> float:
    """Return the median time to open an admin connection and run one query."""
    from devtools.databases import admin_cursor

    def connect_once():
        with admin_cursor(target.admin()) as cur:
            cur.execute("SELECT 1")

    return statistics.median(timed(connect_once) for _ in range(5))


def load_peak_rss(config, size: int) -> int:
    """Load the users scenario in a child process; return its peak RSS in KiB."""
    code = textwrap.dedent(f"""
        import json, sys, resource
        from devtools.scenarios import runner
        from devtools.target import resolve
        from project.configuration import load_config
        config = load_config("testing", environ={{}}).replace(**json.loads(sys.argv[1]))
        runner.load(resolve(config), "users", size={size}, force=True)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    overrides = {
        k: config[k] for k in ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_DB", "POSTGRES_PASSFILE")
    }
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(overrides)], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return int(out.strip().splitlines()[-1])


def bench_scenarios() -> list[Measurement]:
    """Scenario load against SQLAlchemy's bulk insert() of the same rows; reset against a full rebuild; memory."""
    from devtools.target import resolve

    with server_with_database("bench_dev", durable=True) as (_, config):
        target = resolve(config)
        loads, bulks, spent = measure_loads(target)
        times = measure_resets(target)
        connect_time = connecting(target)
        small, big = load_peak_rss(config, 10_000), load_peak_rss(config, SIZE)
    a, b = statistics.median(loads), statistics.median(bulks)
    c, d = statistics.median(times["resets"]), statistics.median(times["rebuilds"])
    steps = ", ".join(f"{name} {seconds / 3:.2f} s" for name, seconds in spent.items())
    return [
        Measurement(
            "P5",
            "scenario load 100k / SQLAlchemy bulk insert() of the same rows",
            f"{a:.2f} s",
            f"{b:.2f} s",
            a / b,
            "<= 0.4",
            "ours creates, migrates, fills and saves the database, the baseline only makes the rows and inserts them; "
            f"{steps} per load",
            spread=ratio_spread(loads, bulks),
        ),
        Measurement(
            "P6",
            "scenario.reset / full rebuild",
            f"{c * 1000:.0f} ms",
            f"{d:.2f} s",
            c / d,
            "<= 0.15",
            f"stretch <= 0.02 {'met' if c / d <= 0.02 else 'not met'}: of a reset, starting the background copy takes "
            f"{statistics.median(times['starts']) * 1000:.0f} ms (a fork, and its connection and lock), connecting "
            f"{connect_time * 1000:.0f} ms; the copy is made in the background in "
            f"{statistics.median(times['refills']):.2f} s",
            spread=ratio_spread(times["resets"], times["rebuilds"]),
        ),
        Measurement(
            "M1",
            "peak memory: load 100k / load 10k",
            f"{big / 1024:.0f} MiB",
            f"{small / 1024:.0f} MiB",
            big / small,
            "<= 1.2",
            "rows stream in batches",
        ),
    ]
