"""The spare copy of a scenario's template that the next reset swaps in: made by a forked background process that
holds an advisory lock while it works (loads and drops wait for it), after dropping the swapped-out database."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Mapping

import psycopg2.errors

from devtools.databases import admin_cursor, create_database, database_exists, drop_database
from devtools.errors import DatabaseError, ScenarioError
from devtools.scenarios.background import run_detached
from devtools.scenarios.naming import ScenarioNames
from project.configuration import Config

LOCK_TIMEOUT = "60s"  # how long a load or drop waits for a refill in progress
# Where forking a process that has loaded libpq is safe. On macOS a fork may crash in system frameworks, so the
# refill runs before the reset returns there.
FORK_SAFE = sys.platform.startswith("linux")


@contextlib.contextmanager
def refill_lock(cur, names: ScenarioNames, wait: bool = True) -> Iterator[bool]:
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


def start_refill(admin: Config, names: ScenarioNames) -> str:
    """Start the background process that drops the swapped-out database and makes the next spare.

    Return once it holds the refill lock (so whatever runs next waits for it or sees it done) with what it said:
    "working", "busy" (another refill holds the lock) or "" (it failed to start; the next reset then copies the
    template itself); "done" where it cannot fork (see FORK_SAFE) and has done the work itself.
    """
    if not FORK_SAFE:
        refill(dict(admin), names)  # done here, before returning: slower, never wrong
        return "done"
    return run_detached(functools.partial(refill_and_report, dict(admin), names))


def refill_and_report(admin: dict, names: ScenarioNames, report_fd: int) -> None:
    """Refill, saying through ``report_fd`` (then closed) whether it got to work; a database error is no one's."""

    def report(word: str) -> None:
        os.write(report_fd, word.encode())
        os.close(report_fd)

    try:
        refill(admin, names, report)
    except (DatabaseError, psycopg2.Error):
        pass  # the next reset copies the template itself and starts another refill


def refill(admin: Mapping, names: ScenarioNames, report: Callable[[str], None] = lambda word: None) -> None:
    """Drop the swapped-out database and make the next spare, holding the refill lock; say "working" (or "busy"
    when another refill holds the lock) through ``report`` as soon as that is known."""
    with admin_cursor(admin) as cur, refill_lock(cur, names, wait=False) as taken:
        report("working" if taken else "busy")
        if not taken:
            return
        drop_database(cur, names.trash, mark=names.mark)
        if database_exists(cur, names.template) and not database_exists(cur, names.spare):
            create_database(cur, names.spare, template=names.template, mark=names.mark)
