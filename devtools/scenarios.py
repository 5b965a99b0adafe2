"""Scenarios: named sandbox databases built from empty, migrated, and filled by ``scenarios/<name>.py``.

A scenario module has a docstring (its description), an optional ``DEFAULT_SIZE`` and one function::

    def fill(connection, *, size, rng): ...

``connection`` is a SQLAlchemy Connection inside a transaction on a freshly migrated database, ``rng`` a
``random.Random`` seeded from ``--seed`` so the same seed gives the same data. :func:`copy_rows` loads rows
in bulk with COPY.

Each scenario's database is ``<POSTGRES_DB>_scenario_<name>``; a template copy saved at load time makes
``reset`` fast. Both carry an ownership mark, and only marked databases are ever dropped.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psycopg2.extensions

from devtools.databases import (
    admin_cursor,
    check_name,
    create_database,
    database_exists,
    database_mark,
    drop_database,
    owner_mark,
    table_counts,
    terminate_connections,
)
from devtools.errors import ScenarioError
from devtools.migrations import app_context, upgrade
from devtools.target import Target
from project.configuration import Config
from project.errors import first_line

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SIZE = 100
DEFAULT_SEED = 1
COPY_BATCH = 10_000
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

# Set by the tasks to show a progress bar for long loads (tqdm); None keeps quiet.
progress_factory: Callable[..., contextlib.AbstractContextManager] | None = None


class ScenarioExists(ScenarioError):
    """The scenario's database exists and replacing it was not confirmed."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    default_size: int
    module: ModuleType

    def fill(self, connection, *, size: int | None = None, rng: random.Random | None = None) -> None:
        """Fill ``connection``'s database with this scenario's data."""
        size = self.default_size if size is None else size
        self.module.fill(connection, size=size, rng=rng or random.Random(DEFAULT_SEED))


def available(directory: Path | None = None) -> list[str]:
    """Return the names of the scenarios in ``directory`` (default: scenarios/)."""
    directory = directory or SCENARIO_DIR
    return sorted(p.stem for p in directory.glob("*.py") if _NAME.match(p.stem))


def get(name: str, directory: Path | None = None) -> Scenario:
    """Import scenario ``name``, or raise a ScenarioError listing the available ones."""
    directory = directory or SCENARIO_DIR
    names = available(directory)
    if name not in names:
        raise ScenarioError(f"There is no scenario '{name}'; available scenarios: {', '.join(names) or 'none'}.")
    path = directory / f"{name}.py"
    module_name = f"scenarios.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "fill", None)):
        raise ScenarioError(f"{path.name} has no fill(connection, *, size, rng) function.")
    description = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "(no description)"
    return Scenario(name, description, int(getattr(module, "DEFAULT_SIZE", DEFAULT_SIZE)), module)


def database_name(config: Config, name: str) -> str:
    """Return scenario ``name``'s database name (checked to fit PostgreSQL's limit along with its template's)."""
    check_name(f"{config['POSTGRES_DB']}_scenario_{name}_template")
    return f"{config['POSTGRES_DB']}_scenario_{name}"


def template_name(config: Config, name: str) -> str:
    """Return the name of the template that ``reset`` restores scenario ``name`` from."""
    return f"{database_name(config, name)}_template"


def mark(config: Config, name: str) -> str:
    """Return the ownership mark of scenario ``name``'s databases under ``config``."""
    return owner_mark(config.name, scenario=name)


def copy_rows(
    connection, table: str, columns: Sequence[str], rows: Iterable[Sequence], total: int | None = None
) -> int:
    """Load ``rows`` into ``table`` with COPY, in batches; return how many were loaded.

    Each batch goes to the server from a second thread while this one makes the next, so making rows in Python
    and the server storing them overlap (the driver lets go of the GIL while it waits for the server). The driver
    reads each batch in one piece: read in small pieces, each would wait for the GIL this thread holds.
    """
    driver_connection = connection.connection.driver_connection
    codec = psycopg2.extensions.encodings[driver_connection.encoding]
    cursor = driver_connection.cursor()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    count = 0
    bar = progress_factory(total=total, desc=table, unit="rows") if progress_factory and total else None
    with bar or contextlib.nullcontext(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy") as sender:
        sending: Future | None = None
        for buffer, size in _csv_batches(rows, COPY_BATCH, codec):
            if sending is not None:
                sending.result()  # one batch in flight at a time: the server's errors surface here, in order
            sending = sender.submit(cursor.copy_expert, statement, buffer, size=len(buffer.getbuffer()) or 1)
            count += size
            if bar:
                bar.update(size)
        if sending is not None:
            sending.result()
    return count


def _csv_batches(rows: Iterable[Sequence], size: int, codec: str) -> Iterator[tuple[io.BytesIO, int]]:
    """Yield ``rows`` as CSV encoded with ``codec``, ``size`` rows to a buffer, with each buffer's row count."""
    text, writer, count = io.StringIO(), None, 0
    for row in rows:
        if writer is None:
            writer = csv.writer(text)
        writer.writerow(row)
        count += 1
        if count == size:
            yield io.BytesIO(text.getvalue().encode(codec)), count
            text, writer, count = io.StringIO(), None, 0
    if count:
        yield io.BytesIO(text.getvalue().encode(codec)), count


@dataclass
class LoadReport:
    name: str
    database: str
    counts: dict[str, int]


def exists(target: Target, name: str) -> bool:
    """Tell whether scenario ``name``'s database exists on the target's server."""
    with admin_cursor(target.admin()) as cur:
        return database_exists(cur, database_name(target.config, name))


def load(
    target: Target, name: str, *, size: int | None = None, seed: int = DEFAULT_SEED, force: bool = False
) -> LoadReport:
    """Build scenario ``name`` from empty: create its database, migrate, fill, save a template."""
    scenario = get(name)
    config, admin = target.config, target.admin()
    dbname, template = database_name(config, name), template_name(config, name)
    if exists(target, name) and not force:
        raise ScenarioExists(f"The scenario database '{dbname}' exists; pass --force to replace it.")
    with admin_cursor(admin) as cur:  # refuses, untouched, a database the scenario did not create
        drop_database(cur, template, mark=mark(config, name))
        drop_database(cur, dbname, mark=mark(config, name))
    step = "creating the database"
    try:
        with admin_cursor(admin) as cur:
            create_database(cur, dbname, mark=mark(config, name))
        step = "applying the migrations"
        upgrade(config, name=dbname)
        step = f"running scenarios/{name}.py"
        from project.extensions import db

        with app_context(config, POSTGRES_DB=dbname), db.engine.begin() as connection:
            scenario.fill(connection, size=size, rng=random.Random(seed))
        step = "saving the template for reset"
        with admin_cursor(admin) as cur:
            terminate_connections(cur, dbname)
            create_database(cur, template, template=dbname, mark=mark(config, name))
    except ScenarioError:
        raise
    except Exception as exc:
        with contextlib.suppress(Exception), admin_cursor(admin) as cur:
            drop_database(cur, template, mark=mark(config, name))
            drop_database(cur, dbname, mark=mark(config, name))
        detail = first_line(exc)
        raise ScenarioError(
            f"Scenario '{name}' failed while {step}: {detail}. Its half-built database was dropped."
        ) from exc
    return LoadReport(name, dbname, table_counts(admin, dbname))


def reset(target: Target, name: str) -> str:
    """Put scenario ``name`` back to its freshly loaded state from its template."""
    get(name)
    config, admin = target.config, target.admin()
    dbname, template = database_name(config, name), template_name(config, name)
    with admin_cursor(admin) as cur:
        if not database_exists(cur, template):
            raise ScenarioError(f"Scenario '{name}' is not loaded; run `inv scenario.load {name}` first.")
        drop_database(cur, dbname, mark=mark(config, name))
        create_database(cur, dbname, template=template, mark=mark(config, name))
    return dbname


def drop(target: Target, name: str) -> bool:
    """Drop scenario ``name``'s database and template; return whether it was loaded."""
    get(name)
    config, admin = target.config, target.admin()
    with admin_cursor(admin) as cur:
        dropped = drop_database(cur, database_name(config, name), mark=mark(config, name))
        dropped_template = drop_database(cur, template_name(config, name), mark=mark(config, name))
    return dropped or dropped_template


@dataclass
class Row:
    name: str
    description: str
    loaded: bool
    counts: dict[str, int]


def listing(target: Target) -> list[Row]:
    """Return every scenario with whether it is loaded and its row counts."""
    rows = []
    config, admin = target.config, target.admin()
    with admin_cursor(admin) as cur:
        loaded = {n for n in available() if database_mark(cur, database_name(config, n)) == mark(config, n)}
    for name in available():
        scenario = get(name)
        counts = table_counts(admin, database_name(config, name)) if name in loaded else {}
        rows.append(Row(name, scenario.description, name in loaded, counts))
    return rows
