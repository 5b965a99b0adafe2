"""Scenarios: named sandbox databases built from empty, migrated, and filled by ``scenarios/<name>.py``.

A scenario module has a docstring (its description), an optional ``DEFAULT_SIZE`` and one function::

    def fill(connection, *, size, rng): ...

``connection`` is a SQLAlchemy Connection inside a transaction on a freshly migrated database, ``rng`` a
``random.Random`` seeded from ``--seed`` so the same seed gives the same data. :func:`copy_rows` loads rows
in bulk with COPY.

Each scenario's database is ``<POSTGRES_DB>_scenario_<name>``; a template copy saved at load time makes
``reset`` fast. Resetting swaps in a spare copy of the template made beforehand (two renames, milliseconds),
then a background process drops the old database and makes the next spare; a reset that finds no spare
ready copies the template itself. All of them carry an ownership mark, and only marked databases are ever
dropped. The background process holds an advisory lock while it works, and loads and drops wait for it.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import os
import random
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

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
from devtools.errors import DatabaseError, ScenarioError
from devtools.migrations import app_context, upgrade
from devtools.target import Target
from project.configuration import Config
from project.errors import first_line

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
DEFAULT_SIZE = 100
DEFAULT_SEED = 1
COPY_BATCH = 10_000
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
LOCK_TIMEOUT = "60s"  # how long a load or drop waits for a refill in progress
# Where forking a process that has loaded libpq is safe. On macOS a fork may crash in system frameworks, so the
# refill runs before the reset returns there.
FORK_SAFE = sys.platform.startswith("linux")
# The execution option that carries a load's progress-bar factory (tqdm) on the connection a scenario fills.
PROGRESS_OPTION = "project_progress"


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


@dataclass(frozen=True)
class Names:
    """Scenario ``name``'s databases under one config, with their ownership mark: the database, the template
    ``reset`` restores, the spare copy of it the next ``reset`` swaps in, and the name the swapped-out database
    has until the background refill drops it."""

    database: str
    template: str
    spare: str
    trash: str
    mark: str

    @classmethod
    def of(cls, config: Config, name: str) -> Names:
        database = database_name(config, name)
        return cls(database, template_name(config, name), f"{database}_spare", f"{database}_trash", mark(config, name))


@contextlib.contextmanager
def refill_lock(cur, names: Names, wait: bool = True) -> Iterator[bool]:
    """Hold the advisory lock that the background refill of ``names`` holds while it works; yield whether it was
    taken (with ``wait``, it waits up to LOCK_TIMEOUT, then raises a ScenarioError)."""
    key = f"project scenario {names.database}"
    if wait:
        cur.execute("SET lock_timeout = %s", (LOCK_TIMEOUT,))
        try:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        except psycopg2.errors.LockNotAvailable:
            raise ScenarioError(
                f"The scenario database '{names.database}' is still being prepared by a background process after "
                f"{LOCK_TIMEOUT}; try again, or look for a stuck session in pg_stat_activity."
            ) from None
        taken = True
    else:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))
        taken = cur.fetchone()[0]
    try:
        yield taken
    finally:
        if taken:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))


def _drop_all(cur, names: Names) -> None:
    """Drop every database of ``names`` (refusing, untouched, one the scenario did not create)."""
    for database in (names.template, names.spare, names.trash, names.database):
        drop_database(cur, database, mark=names.mark)


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
    progress = connection.get_execution_options().get(PROGRESS_OPTION)
    bar = progress(total=total, desc=table, unit="rows") if progress and total else None
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


def loaded(target: Target, name: str) -> Target:
    """Return ``target`` pointed at scenario ``name``'s database, or raise a ScenarioError when it is not loaded."""
    if not exists(target, name):
        raise ScenarioError(f"scenario '{name}' is not loaded; run `inv scenario.load {name}` first.")
    return target.with_database(database_name(target.config, name))


def exists(target: Target, name: str) -> bool:
    """Tell whether scenario ``name``'s database exists on the target's server."""
    with admin_cursor(target.admin()) as cur:
        return database_exists(cur, database_name(target.config, name))


def load(
    target: Target,
    name: str,
    *,
    size: int | None = None,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    progress: Callable[..., contextlib.AbstractContextManager] | None = None,
) -> LoadReport:
    """Build scenario ``name`` from empty: create its database, migrate, fill (``progress`` bars), save a template."""
    scenario = get(name)
    config, admin = target.config, target.admin()
    names = Names.of(config, name)
    dbname, template = names.database, names.template
    if exists(target, name) and not force:
        raise ScenarioExists(f"The scenario database '{dbname}' exists; pass --force to replace it.")
    with admin_cursor(admin) as cur, refill_lock(cur, names):
        _drop_all(cur, names)
    step = "creating the database"
    try:
        with admin_cursor(admin) as cur:
            create_database(cur, dbname, mark=mark(config, name))
        step = "applying the migrations"
        upgrade(config, name=dbname)
        step = f"running scenarios/{name}.py"
        from project.extensions import db

        with app_context(config, POSTGRES_DB=dbname), db.engine.begin() as connection:
            connection.execution_options(**{PROGRESS_OPTION: progress})
            scenario.fill(connection, size=size, rng=random.Random(seed))
        step = "saving the template for reset"
        with admin_cursor(admin) as cur:
            terminate_connections(cur, dbname)
            create_database(cur, template, template=dbname, mark=mark(config, name))
    except ScenarioError:
        raise
    except Exception as exc:
        with contextlib.suppress(Exception), admin_cursor(admin) as cur:
            _drop_all(cur, names)
        detail = first_line(exc)
        raise ScenarioError(
            f"Scenario '{name}' failed while {step}: {detail}. Its half-built database was dropped."
        ) from exc
    start_refill(admin, names)
    return LoadReport(name, dbname, table_counts(admin, dbname))


def reset(target: Target, name: str) -> str:
    """Put scenario ``name`` back to its freshly loaded state: swap in the spare copy of its template when one is
    ready, else copy the template; then have the next spare made in the background."""
    get(name)
    admin = target.admin()
    names = Names.of(target.config, name)
    with admin_cursor(admin) as cur:
        if not database_exists(cur, names.template):
            raise ScenarioError(f"Scenario '{name}' is not loaded; run `inv scenario.load {name}` first.")
        with refill_lock(cur, names, wait=False) as idle:
            if not (idle and _swap_in_spare(cur, names)):
                drop_database(cur, names.database, mark=names.mark)
                create_database(cur, names.database, template=names.template, mark=names.mark)
    start_refill(admin, names)
    return names.database


def wait_for_refill(target: Target, name: str) -> None:
    """Return once no background refill of scenario ``name`` is at work."""
    names = Names.of(target.config, name)
    with admin_cursor(target.admin()) as cur, refill_lock(cur, names):
        pass


def _swap_in_spare(cur, names: Names) -> bool:
    """Rename the database aside and the spare into its place; return whether it was done."""
    if database_mark(cur, names.spare) != names.mark:
        return False  # none ready (or not ours: left alone)
    drop_database(cur, names.trash, mark=names.mark)  # left by a refill that was stopped; rare
    try:
        if database_exists(cur, names.database):
            terminate_connections(cur, names.database)
            _rename(cur, names.database, names.trash)
    except psycopg2.Error:
        return False  # a client connected again at once: copy the template instead
    _rename(cur, names.spare, names.database)
    return True


def _rename(cur, old: str, new: str) -> None:
    cur.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(check_name(new))))


def start_refill(admin: Config, names: Names) -> str:
    """Start the background process that drops the swapped-out database and makes the next spare.

    Return once it holds the refill lock (so whatever runs next waits for it or sees it done) with what it said:
    "working", "busy" (another refill holds the lock) or "" (it failed to start; the next reset then copies the
    template itself); "done" where it cannot fork (see FORK_SAFE) and has done the work itself.

    The process is forked twice, so it is nobody's child to wait for, and lives in its own session with its
    standard streams on /dev/null, so it holds no caller's pipe or terminal open. It is a fork of the caller and
    lives for as long as one copy of the template takes.
    """
    if not FORK_SAFE:
        refill(dict(admin), names)  # done here, before returning: slower, never wrong
        return "done"
    read_end, write_end = os.pipe()
    # The lines marked "no mutate" run in the forked children, where a mutant cannot be watched: one that sends
    # the test process itself down the child's path ends it with status 0, which mutation testing reads as a pass.
    pid = os.fork()
    if pid == 0:  # pragma: no mutate
        try:
            os.close(read_end)  # pragma: no mutate
            if os.fork() == 0:
                os.setsid()  # pragma: no mutate
                _detach_stdio()
                _refill_and_report(dict(admin), names, write_end)
        finally:
            os._exit(0)  # pragma: no mutate
    os.close(write_end)
    os.waitpid(pid, 0)  # pragma: no mutate  (reaps the middle process, which exits at once)
    with os.fdopen(read_end) as said:
        return said.read()


def _detach_stdio() -> None:
    devnull = os.open(os.devnull, os.O_RDWR)  # pragma: no mutate  (runs only in the forked child)
    for fd in (0, 1, 2):  # pragma: no mutate
        os.dup2(devnull, fd)  # pragma: no mutate
    os.close(devnull)  # pragma: no mutate


def _refill_and_report(admin: dict, names: Names, report_fd: int) -> None:
    def report(word: str) -> None:
        os.write(report_fd, word.encode())
        os.close(report_fd)

    try:
        refill(admin, names, report)
    except (DatabaseError, psycopg2.Error):
        pass  # the next reset copies the template itself and starts another refill


def refill(admin: Mapping, names: Names, report: Callable[[str], None] = lambda word: None) -> None:
    """Drop the swapped-out database and make the next spare, holding the refill lock; say "working" (or "busy"
    when another refill holds the lock) through ``report`` as soon as that is known."""
    with admin_cursor(admin) as cur, refill_lock(cur, names, wait=False) as taken:
        report("working" if taken else "busy")
        if not taken:
            return
        drop_database(cur, names.trash, mark=names.mark)
        if database_exists(cur, names.template) and not database_exists(cur, names.spare):
            create_database(cur, names.spare, template=names.template, mark=names.mark)


def drop(target: Target, name: str) -> bool:
    """Drop scenario ``name``'s database and template; return whether it was loaded."""
    get(name)
    names = Names.of(target.config, name)
    with admin_cursor(target.admin()) as cur, refill_lock(cur, names):
        dropped = drop_database(cur, names.database, mark=names.mark)
        dropped_template = drop_database(cur, names.template, mark=names.mark)
        drop_database(cur, names.spare, mark=names.mark)
        drop_database(cur, names.trash, mark=names.mark)
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
