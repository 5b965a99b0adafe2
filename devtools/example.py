"""The example app (a users API) that ships with the setup: which files are it, and removing it.

README "Make it yours" lists the same files. ``inv new DEST --package NAME --no-example`` removes them from the
new project: an empty model module, no users API, no example migration or scenario, and a first test of the
app's front door in place of the example's tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from devtools.errors import NewProjectError

EXAMPLE_FILES = (
    "project/api/users.py",
    "migrations/versions/aab5f787502a_add_users_table.py",
    "scenarios/users.py",
    "scenarios/volume.py",
    "tests/example/conftest.py",
    "tests/example/test_users_api.py",
    "tests/example/test_users_properties.py",
    "tests/example/test_users_scenarios.py",
)
EMPTY_MODELS = '''"""Database models: subclass ``db.Model`` here, then `inv db.migrate -m "add ... table"`."""

from project.extensions import db

__all__ = ["db"]
'''
FIRST_TEST = '''"""The app's own tests: `nox -s app` runs this directory (README "Testing")."""


def test_the_front_door_answers(client):
    response = client.get("/")
    assert response.status_code == 200 and "/healthz" in response.json["endpoints"]
'''
# (file, the example's text, what replaces it): the example's registration and mentions in files that stay.
EDITS = (
    (
        "project/app.py",
        "from project.api import errors, health, main, users\n",
        "from project.api import errors, health, main\n",
    ),
    ("project/app.py", "[main.bp, users.bp, health.bp]", "[main.bp, health.bp]"),
    ("project/api/main.py", '["/users", "/users/<id>", "/healthz", "/readyz"]', '["/healthz", "/readyz"]'),
    ("pyproject.toml", '    "project/api/users.py",\n', ""),
    ("pyproject.toml", '    "tests/example/test_users_api.py",\n', ""),
)
# Files that take the example's place.
ADDED = {"project/models.py": EMPTY_MODELS, "tests/example/test_app.py": FIRST_TEST}


def present(files: list[str]) -> bool:
    """Tell whether the project whose files are ``files`` still has the example (any of its files)."""
    return any(relative in EXAMPLE_FILES for relative in files)


def kept(relative: str) -> bool:
    """Tell whether the file at ``relative`` stays once the example is gone (its replacement is written anew)."""
    return relative not in EXAMPLE_FILES and relative not in ADDED


def edit(relative: str, text: str) -> str:
    """Return ``text``, the file at ``relative``, without the example's registration and mentions; a
    NewProjectError names an edit that no longer applies (the file changed since this list was written)."""
    for path, old, new in EDITS:
        if path != relative:
            continue
        if old not in text:
            raise NewProjectError(f"{path} no longer holds the example's {old.strip()!r}; remove the example by hand.")
        text = text.replace(old, new, 1)
    return text


def remove(root: Path) -> None:
    """Remove the example from the project at ``root``, in place."""
    for path in {path for path, _, _ in EDITS}:
        (root / path).write_text(edit(path, (root / path).read_text()))
    for relative in EXAMPLE_FILES:
        (root / relative).unlink(missing_ok=True)
    shutil.rmtree(root / "tests" / "example" / "__pycache__", ignore_errors=True)
    for relative, text in ADDED.items():
        (root / relative).write_text(text)
