"""The layout holds: the image ships only the app, and a task works out its database target once."""

import ast
import re
import tomllib
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


def imports_the_conftest(source: str) -> bool:
    """Tell whether Python ``source`` imports tests.conftest (its own statements, not the code in its strings)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(alias.name == "tests.conftest" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and not node.level:
            if node.module == "tests.conftest" or (
                node.module == "tests" and "conftest" in {a.name for a in node.names}
            ):
                return True
    return False


def test_no_test_imports_the_conftest():
    # pytest loads the conftest as a plugin; imported as a module too, its hooks and fixtures would exist twice.
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py") if imports_the_conftest(path.read_text())
    ]
    assert offenders == []
    # The rule, on what it must and must not find:
    assert imports_the_conftest("import tests.conftest") and imports_the_conftest("from tests import conftest")
    assert imports_the_conftest("def f():\n    from tests.conftest import early_server")
    assert not imports_the_conftest('CODE = """\nimport tests.conftest\n"""') and not imports_the_conftest(
        "import tests"
    )


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


# The tasks read the development config afresh, with the project's migrations; the scenario is the tests' own.
layout_db = scratch_database("layout_db", config="development", domain=False)


@pytest.fixture
def pointed_at(postgresql_server, layout_db, domain_scenarios, monkeypatch):
    """Point the development config at a fresh database on the run's throwaway server."""
    for key, value in server_environment(postgresql_server, layout_db["POSTGRES_DB"]).items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    ("task", "args"),
    [("db.init", ()), ("scenario.load", ("blank",)), ("db.upgrade", ())],
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


@pytest.fixture
def apps_built(monkeypatch):
    """Count the Flask apps the tooling builds (each migration step used to build one of its own)."""
    pytest.importorskip("invoke", reason="the task tests need invoke (requirements/development.txt)")
    import project

    built = []
    real = project.create_app
    monkeypatch.setattr(project, "create_app", lambda *a, **kw: built.append(1) or real(*a, **kw))
    return built


@pytest.mark.parametrize(
    ("task", "args", "before"),
    [
        ("db.init", (), None),  # creates the database, then migrates it
        ("db.init", (), "base"),  # reads the revision, then migrates
        ("db.upgrade", (), "base"),  # migrates, then reads the revision it reached
        ("db.downgrade", ("base",), "head"),
        ("scenario.load", ("blank",), "head"),  # migrates the scenario's database, then fills it
    ],
)
def test_a_tasks_migration_steps_build_the_app_once(pointed_at, layout_db, apps_built, task, args, before):
    from invoke import Context

    from devtools import lifecycle, migrations
    from devtools.target import resolve
    from devtools.tasks import ns

    if before is not None:
        lifecycle.init_database(resolve(layout_db))
        if before == "base":
            migrations.downgrade(layout_db, "base")
    apps_built.clear()
    ns[task](Context(), *args, config="development")
    assert len(apps_built) == 1


@pytest.fixture
def admin_connects(tmp_path, monkeypatch):
    """Record every connection the tooling opens to administer databases, in the background process too (a
    file, since a forked child's memory is its own); yields a function that returns the databases connected to."""
    from devtools import databases

    record = tmp_path / "connects"
    record.touch()
    real = databases.connect

    def connect(values, dbname=None, **kwargs):
        with record.open("a") as out:
            out.write(f"{dbname or values['POSTGRES_DB']}\n")
        return real(values, dbname, **kwargs)

    monkeypatch.setattr(databases, "connect", connect)
    return lambda: record.read_text().split()


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replaced"])
def test_scenario_load_opens_at_most_two_admin_connections(pointed_at, layout_db, admin_connects, existing):
    from invoke import Context

    from devtools import lifecycle
    from devtools.scenarios import runner
    from devtools.target import resolve
    from devtools.tasks import ns

    target = resolve(layout_db)
    lifecycle.init_database(target)
    if existing:
        runner.load(target, "blank")
        runner.wait_for_refill(target, "blank")
    before = len(admin_connects())
    ns["scenario.load"](Context(), "blank", force=existing, config="development")
    runner.wait_for_refill(target, "blank")  # the background process has connected by the time it lets go
    connects = admin_connects()[before:-1]  # the wait's own connection is the last
    assert connects == ["postgres", "postgres"]  # the load's, and the background process's that makes the spare


def test_every_test_the_mutation_settings_name_exists():
    # A renamed test left under --deselect makes mutmut's first pass fail, and `nox -s mutation` with it.
    with (ROOT / "pyproject.toml").open("rb") as file:
        settings = tomllib.load(file)["tool"]["mutmut"]
    args = settings["pytest_add_cli_args"]
    deselected = [value for flag, value in zip(args, args[1:], strict=False) if flag == "--deselect"]
    named = [*settings["pytest_add_cli_args_test_selection"], *deselected]
    missing = []
    for test in named:
        path, _, function = test.partition("::")
        source = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
        if not source or (function and not re.search(rf"^def {re.escape(function)}\(", source, re.MULTILINE)):
            missing.append(test)
    assert len(named) > 20 and missing == []
