"""Make the test server's migrated databases: ``python -m tests.migrated``, the job as JSON on stdin.

The conftest runs this as a process of its own while it prepares the server in a background thread, alongside
pytest's collection in the main thread: imported in that thread, alembic and Flask would race the main thread's
imports of the same modules, and one side could find a module half-initialised ("partially initialized module").
"""

from __future__ import annotations

import json
import sys

from devtools import lifecycle
from devtools.databases import admin_cursor, create_database, owner_mark
from devtools.target import resolve
from project.configuration import load_config


def make(values: dict[str, str], migrated: str, run: str) -> None:
    """Create database ``migrated`` with the migrations applied, and ``run`` as its copy, where ``values`` (the
    testing config's overrides) point."""
    config = load_config("testing", environ={}).replace(**values, POSTGRES_DB=migrated)
    lifecycle.init_database(resolve(config))
    with admin_cursor(config) as cur:
        create_database(cur, run, template=migrated, mark=owner_mark("testing"))


if __name__ == "__main__":
    job = json.loads(sys.stdin.read())
    make(job["values"], job["migrated"], job["run"])
