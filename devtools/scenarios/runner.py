"""Load, reset, list and drop scenario databases on a target's server.

Each scenario's database is ``<POSTGRES_DB>_scenario_<name>``; a template copy saved at load time makes ``reset``
fast. Resetting swaps in a spare copy of the template made beforehand (two renames, milliseconds), then a background
process drops the old database and makes the next spare (``spares``); a reset that finds no spare ready copies the
template itself first, then swaps the copy in the same way. All of them carry an ownership mark, and only marked
databases are ever dropped. The background process holds an advisory lock while it works, and loads, resets
and drops wait for it.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg2
from psycopg2 import sql

from devtools import migrations
from devtools.databases import (
    admin_cursor,
    check_name,
    create_database,
    database_exists,
    database_mark,
    drop_database,
    drop_leftover,
    row_counts,
    table_counts,
    terminate_connections,
)
from devtools.errors import ScenarioError
from devtools.scenarios.catalogue import DEFAULT_SEED, Scenario, available, get
from devtools.scenarios.copying import PROGRESS_OPTION
from devtools.scenarios.naming import ScenarioNames
from devtools.scenarios.spares import refill_lock, start_refill
from devtools.target import Target
from project.configuration import Config
from project.errors import first_line


class ScenarioExists(ScenarioError):
    """The scenario's database exists and replacing it was not confirmed."""


def _drop_all(cur, names: ScenarioNames) -> None:
    """Drop every database of ``names`` (refusing, untouched, one the scenario did not create)."""
    for database in (names.template, names.spare, names.fresh, names.trash, names.database):
        drop_database(cur, database, mark=names.mark)
        drop_leftover(cur, database, names.mark)


@dataclass
class LoadReport:
    name: str
    database: str
    counts: dict[str, int]


def loaded(target: Target, name: str) -> Target:
    """Return ``target`` pointed at scenario ``name``'s database, or raise a ScenarioError when it is not loaded."""
    if not exists(target, name):
        raise ScenarioError(f"scenario '{name}' is not loaded; run `inv scenario.load {name}` first.")
    return target.with_database(ScenarioNames.of(target.config, name).database)


def exists(target: Target, name: str) -> bool:
    """Tell whether scenario ``name``'s database exists on the target's server."""
    with admin_cursor(target.admin()) as cur:
        return database_exists(cur, ScenarioNames.of(target.config, name).database)


def load(
    target: Target,
    name: str,
    *,
    size: int | None = None,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: Callable[..., contextlib.AbstractContextManager] | None = None,
    confirm: Callable[[str], None] | None = None,
) -> LoadReport:
    """Build scenario ``name`` from empty: create its database, migrate, fill (``progress`` bars), save a template.

    An existing scenario database is replaced when ``force`` says so, or when ``confirm`` (called with its name)
    returns; without either it is a ScenarioExists. One admin connection does all of it, and the background
    process that makes the first spare opens the only other one.
    """
    scenario = get(name)
    names = ScenarioNames.of(target.config, name)
    admin = target.admin()
    with admin_cursor(admin) as cur:
        if not force and database_exists(cur, names.database):
            if confirm is None:
                raise ScenarioExists(f"The scenario database '{names.database}' exists; pass --force to replace it.")
            confirm(names.database)
        with refill_lock(cur, names):
            _drop_all(cur, names)
        counts = _build(cur, target.config, names, scenario, size=size, seed=seed, progress=progress)
    start_refill(admin, names)
    return LoadReport(name, names.database, counts)


def _build(cur, config: Config, names: ScenarioNames, scenario: Scenario, **fill: Any) -> dict[str, int]:
    """Create the scenario's database, migrate and fill it on one app, and save its template (through the admin
    cursor ``cur``); return its row counts. A failure drops what was built and says at which step."""
    step = "creating the database"
    try:
        create_database(cur, names.database, mark=names.mark)
        step = "applying the migrations"
        with migrations.opened(config, POSTGRES_DB=names.database) as steps:
            steps.upgrade()
            step = f"running scenarios/{scenario.name}.py"
            counts = _fill(scenario, **fill)
        step = "saving the template for reset"
        terminate_connections(cur, names.database)
        create_database(cur, names.template, template=names.database, mark=names.mark)
    except ScenarioError:
        raise
    except Exception as exc:
        try:
            _drop_all(cur, names)
            cleaned = "Its half-built database was dropped."
        except Exception as drop_exc:  # the connection is gone, say: the cause above is what to report
            cleaned = (
                f"Dropping its half-built database failed too ({first_line(drop_exc)}); "
                f"run `inv scenario.drop {scenario.name}`."
            )
        raise ScenarioError(f"Scenario '{scenario.name}' failed while {step}: {first_line(exc)}. {cleaned}") from exc
    return counts


def _fill(scenario: Scenario, *, size: int | None, seed: int, progress) -> dict[str, int]:
    """Run the scenario's fill in one transaction on the current app's database; return the row counts."""
    from project.extensions import db

    with db.engine.begin() as connection:
        connection.execution_options(**{PROGRESS_OPTION: progress})
        scenario.fill(connection, size=size, rng=random.Random(seed))
        with contextlib.closing(connection.connection.cursor()) as cur:
            return row_counts(cur)


def reset(target: Target, name: str) -> str:
    """Put scenario ``name`` back to its freshly loaded state: swap in the spare copy of its template, or a copy made
    now when none is ready, by renames; then have the next spare made in the background.

    It waits for a background refill at work (as load and drop do), and copies before it drops anything: when the
    copy fails (a client connected to the template, say), the scenario's database is left as it was.
    """
    get(name)
    admin = target.admin()
    names = ScenarioNames.of(target.config, name)
    with admin_cursor(admin) as cur:
        if not database_exists(cur, names.template):
            raise ScenarioError(f"Scenario '{name}' is not loaded; run `inv scenario.load {name}` first.")
        with refill_lock(cur, names):
            source = names.spare if database_mark(cur, names.spare) == names.mark else _copy_template(cur, name, names)
            _swap_in(cur, names, source)
    start_refill(admin, names)
    return names.database


def _copy_template(cur, name: str, names: ScenarioNames) -> str:
    """Copy the template to the scenario's fresh name and return that name; raise a ScenarioError when it fails."""
    drop_database(cur, names.fresh, mark=names.mark)  # left by a reset that was stopped; rare
    try:
        create_database(cur, names.fresh, template=names.template, mark=names.mark)
    except psycopg2.Error as exc:
        raise ScenarioError(
            f"Scenario '{name}' could not be reset: copying its template '{names.template}' failed "
            f"({first_line(exc)}); '{names.database}' was left as it was. Close any session on the template and "
            "run the reset again."
        ) from None
    return names.fresh


def wait_for_refill(target: Target, name: str) -> None:
    """Return once no background refill of scenario ``name`` is at work."""
    names = ScenarioNames.of(target.config, name)
    with admin_cursor(target.admin()) as cur, refill_lock(cur, names):
        pass


def _swap_in(cur, names: ScenarioNames, source: str) -> None:
    """Rename the database aside (the background refill drops it) and ``source`` into its place."""
    drop_database(cur, names.trash, mark=names.mark)  # left by a refill that was stopped; rare
    if database_exists(cur, names.database):
        try:
            terminate_connections(cur, names.database)
            _rename(cur, names.database, names.trash)
        except psycopg2.Error:  # a client connected again at once: the drop ends its sessions in the same step
            drop_database(cur, names.database, mark=names.mark)
    _rename(cur, source, names.database)


def _rename(cur, old: str, new: str) -> None:
    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(check_name(new))))


def drop(target: Target, name: str) -> bool:
    """Drop scenario ``name``'s database and template; return whether it was loaded."""
    get(name)
    names = ScenarioNames.of(target.config, name)
    with admin_cursor(target.admin()) as cur, refill_lock(cur, names):
        dropped = drop_database(cur, names.database, mark=names.mark)
        dropped_template = drop_database(cur, names.template, mark=names.mark)
        for leftover in (names.spare, names.fresh, names.trash):
            drop_database(cur, leftover, mark=names.mark)
        for database in (names.database, names.template, names.spare, names.fresh):
            drop_leftover(cur, database, names.mark)
    return dropped or dropped_template


@dataclass
class ListingRow:
    name: str
    description: str
    loaded: bool
    counts: dict[str, int]


def listing(target: Target) -> list[ListingRow]:
    """Return every scenario with whether it is loaded and its row counts."""
    rows = []
    config, admin = target.config, target.admin()
    names = {n: ScenarioNames.of(config, n) for n in available()}
    with admin_cursor(admin) as cur:
        loaded = {n for n in names if database_mark(cur, names[n].database) == names[n].mark}
    for name in available():
        scenario = get(name)
        counts = table_counts(admin, names[name].database) if name in loaded else {}
        rows.append(ListingRow(name, scenario.description, name in loaded, counts))
    return rows
