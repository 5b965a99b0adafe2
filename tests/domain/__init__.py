"""The tooling tests' own domain: a table, its migration, two scenarios and two views that live with the tests.

The tests of tasks, scenarios, clusters, migrations and lifecycle use these, never the app's models, API,
migrations or scenario files, so a project that replaces the example (see README "Make it yours") keeps them
passing unchanged. Its schema is one table, ``items`` (a unique label and a time), made by the revision in
``versions/``; its scenarios are ``items`` (rows drawn from the seed) and ``blank`` (none).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from project.revisions import MIGRATIONS_DIR
from tests.helpers import copy_project

DOMAIN = Path(__file__).resolve().parent
SCENARIOS = DOMAIN / "scenarios"
VERSIONS = DOMAIN / "versions"
SCENARIO_NAMES = ["blank", "items"]
HEAD = "d0e1a2b3c4d5"  # the revision in versions/
ITEM_LABEL = "label"


def migrations_dir(target: Path) -> Path:
    """Make ``target`` a migrations directory: the project's alembic set-up (env.py, alembic.ini, the script
    template) with this domain's revisions instead of the app's; return it."""
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "versions"))
    shutil.copytree(VERSIONS, target / "versions", ignore=shutil.ignore_patterns("__pycache__"))
    return target


def project_copy(target: Path, **development: str) -> Path:
    """Copy the project into ``target`` (see tests.helpers.copy_project) with this domain beside the app's own:
    its model in a module of the package that ``models.py`` imports, its revision on top of the app's, and its
    scenarios in place of the app's; return it.

    Whatever the app is (the example, another domain, none), its models, views and migrations stay as they are,
    so the tasks see a project like the developer's with one more table they can count on."""
    from alembic.script import ScriptDirectory

    copy_project(target, **development)
    package = target / "project"
    shutil.copy2(DOMAIN / "models.py", package / "tooling_items.py")
    with (package / "models.py").open("a") as models:
        models.write("\n\nfrom project.tooling_items import Item  # noqa: E402,F401  the tooling tests' table\n")
    heads = ScriptDirectory(str(target / "migrations")).get_heads()
    below = None if not heads else heads[0] if len(heads) == 1 else tuple(heads)
    versions = target / "migrations" / "versions"
    versions.mkdir(exist_ok=True)  # a project with no migration yet may have none
    for revision in VERSIONS.glob("*.py"):
        text = revision.read_text().replace("down_revision = None", f"down_revision = {below!r}", 1)
        (versions / revision.name).write_text(text)
    for scenario in (target / "scenarios").glob("*.py"):
        if scenario.name != "__init__.py":
            scenario.unlink()
    for scenario in SCENARIOS.glob("*.py"):
        shutil.copy2(scenario, target / "scenarios" / scenario.name)
    return target


def add_item_views(app) -> None:
    """Give ``app`` ``POST /items`` (JSON ``{"label": ...}``, 201 with the new id) and ``GET /items/<id>``."""
    from flask import abort, request
    from sqlalchemy import text

    from project.extensions import db

    def create():
        label = request.get_json()[ITEM_LABEL]
        item_id = db.session.execute(text("INSERT INTO items (label) VALUES (:label) RETURNING id"), {"label": label})
        item_id = item_id.scalar_one()
        db.session.commit()
        return {"id": item_id}, 201

    def read(item_id: int):
        row = db.session.execute(text("SELECT id, label FROM items WHERE id = :id"), {"id": item_id}).first()
        if row is None:
            abort(404)
        return {"id": row.id, "label": row.label}

    app.add_url_rule("/items", "create_item", create, methods=["POST"])
    app.add_url_rule("/items/<int:item_id>", "read_item", read)


def labels(cur) -> list[str]:
    """Return the items' labels in id order, through the psycopg2 cursor ``cur``."""
    cur.execute("SELECT label FROM items ORDER BY id")
    return [label for (label,) in cur.fetchall()]
