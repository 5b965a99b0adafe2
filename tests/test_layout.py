"""The layout holds: the image ships only the app, and a task works out its database target once."""

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.server import scratch_database, server_environment

SHIPPED = {"config/", "migrations/", "project/", "wsgi.py", "gunicorn.conf.py"}


def copied_sources(dockerfile: Path) -> set[str]:
    """Return what the Dockerfile's COPY instructions take from the build context (not from other stages)."""
    sources = set()
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources.update(w for w in words[1:-1] if not w.startswith("--"))
    return sources


def test_the_image_copies_only_the_shipped_app_and_production_requirements():
    sources = copied_sources(ROOT / "docker" / "Dockerfile")
    assert sources - {"requirements/production.txt"} == SHIPPED


def test_the_build_context_is_an_allow_list_of_the_shipped_files():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "everything is left out unless allowed"
    allowed = {line[1:] for line in rules if line.startswith("!")}
    assert allowed == SHIPPED | {"requirements/production.txt"}


def test_no_module_of_the_app_mentions_the_tooling():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "project").rglob("*.py")
        if re.search(r"^\s*(from|import)\s+(devtools|tests)\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []


@pytest.fixture
def counted(monkeypatch):
    """Count how often the tasks resolve a target and read the local cluster's address."""
    pytest.importorskip("invoke", reason="the task tests need invoke (requirements/development.txt)")
    from devtools import target
    from devtools.tasks import ns

    calls = {"resolve": 0, "local_cluster": 0}

    def counting(name, original):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(target, "resolve", counting("resolve", target.resolve))
    monkeypatch.setattr(target, "local_cluster", counting("local_cluster", target.local_cluster))
    return ns, calls


layout_db = scratch_database("layout_db", config="development")


@pytest.fixture
def pointed_at(postgresql_server, layout_db, monkeypatch):
    """Point the development config at a fresh database on the run's throwaway server."""
    for key, value in server_environment(postgresql_server, layout_db["POSTGRES_DB"]).items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    ("task", "args"),
    [("db.init", ()), ("scenario.load", ("empty",)), ("db.upgrade", ())],
)
def test_a_task_resolves_its_target_once(counted, pointed_at, task, args, capsys):
    from invoke import Context

    tasks, calls = counted
    if task != "db.init":
        tasks["db.init"](Context(), config="development")
        calls.update(resolve=0, local_cluster=0)
    tasks[task](Context(), *args, config="development")
    assert calls == {"resolve": 1, "local_cluster": 1}
    assert "layout_db" in capsys.readouterr().out
