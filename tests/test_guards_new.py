"""`inv new`'s rules one by one, in-process: the names it accepts and derives, the destinations it refuses, how it
copies and tidies, and how it undoes a half-made project (test_new.py makes whole projects with the real task)."""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools import identity, new
from devtools.errors import NewProjectError
from devtools.renaming import Identity, Renamer
from tests.helpers import ROOT


@pytest.fixture
def root(tmp_path):
    """A project root of the test's own: the run's temporary directory may lie inside this checkout (nox's does)."""
    found = tmp_path / "project"
    found.mkdir()
    return found


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """A directory beside the project root, where git looks no further up."""
    found = tmp_path / "outside"
    found.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return found


@pytest.fixture
def scratch():
    """A directory for ruff outside any folder ruff leaves out by default (nox's temporary directory is in .nox)."""
    found = Path(tempfile.mkdtemp(prefix="guard-new-", dir="/tmp" if Path("/tmp").is_dir() else None))
    yield found
    shutil.rmtree(found, ignore_errors=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another account owns needs root")


def names(**given):
    return new.choose_names(given.pop("dest", ROOT.parent / "corner-shop"), "project", {"tests", "docs"}, **given)


# -- names -----------------------------------------------------------------------------------------


def test_the_names_default_to_the_destinations():
    chosen = names(dest=ROOT.parent / "Corner-Shop")
    assert chosen == new.Names(package="corner_shop", title="Corner shop", database="corner_shop")
    assert chosen.project_name == "corner-shop"
    assert chosen.databases == ("corner_shop_dev", "corner_shop_test", "corner_shop")


def test_given_names_win_and_the_title_is_tidied():
    chosen = names(package="shop", title="  The   Corner\tShop ", database="store")
    assert chosen == new.Names(package="shop", title="The Corner Shop", database="store")


@pytest.mark.parametrize(
    ("package", "project"),
    [("shop", "shop"), ("shop_", "shop"), ("my_shop", "my-shop"), ("s", "s-app"), ("s_", "s-app")],
)
def test_the_project_name_is_the_package_with_dashes_made_valid(package, project):
    assert new.Names(package, "T", package).project_name == project
    assert identity.NAME.match(project)


@pytest.mark.parametrize("package", ["s", "shop", "shop_2", "a1_b2"])
def test_a_lowercase_identifier_is_a_valid_package(package):
    assert names(package=package).package == package


@pytest.mark.parametrize("package", ["Shop", "2shop", "_shop", "shop-x", "shop\n", "shop.x", "", "shöp"])
def test_anything_else_is_refused_saying_what_a_name_must_be(package):
    with pytest.raises(NewProjectError) as refused:
        names(package=package)
    assert str(refused.value) == (
        f"--package '{package}' must be a lowercase Python identifier: a letter, then letters, digits or "
        "underscores (for example 'shop')."
    )


def test_a_bad_name_from_the_destination_says_where_it_came_from_and_what_to_pass():
    with pytest.raises(NewProjectError) as refused:
        names(dest=ROOT.parent / "2shop")
    assert str(refused.value) == (
        "The package name '2shop' (from DEST '2shop') must be a lowercase Python identifier: a letter, then "
        "letters, digits or underscores (for example 'shop'); pass --package NAME."
    )


@pytest.mark.parametrize(
    ("package", "said"),
    [
        ("class", "--package 'class' is a Python keyword; choose another name."),
        ("match", "--package 'match' is a Python keyword; choose another name."),
        ("tests", "--package 'tests' is already a top-level name in the project; choose another name."),
        ("json", "--package 'json' would shadow the installed module 'json'; choose another name."),
        ("flask", "--package 'flask' would shadow the installed module 'flask'; choose another name."),
    ],
)
def test_a_name_python_or_the_project_already_uses_is_refused(package, said):
    with pytest.raises(NewProjectError) as refused:
        names(package=package)
    assert str(refused.value) == said


def test_a_refused_name_from_the_destination_says_to_pass_another():
    with pytest.raises(NewProjectError, match=r"^The package name 'json' \(from DEST 'json'\) would shadow .*; pass "):
        names(dest=ROOT.parent / "json")


def test_the_current_package_name_may_be_kept():
    assert new.choose_names(ROOT.parent / "x", "json", set(), package="json").package == "json"


@pytest.mark.parametrize("length", [1, 29, 30])
def test_a_database_name_of_up_to_thirty_characters_is_accepted(length):
    database = "d" * length
    assert new.MAX_DATABASE_LENGTH == 30
    assert names(package="shop", database=database).databases == (f"{database}_dev", f"{database}_test", database)


def test_a_longer_database_name_is_refused():
    with pytest.raises(NewProjectError) as refused:
        names(package="shop", database="d" * 31)
    assert str(refused.value) == f"--database '{'d' * 31}' is longer than 30 characters."


def test_a_database_name_is_held_to_the_package_rule():
    with pytest.raises(NewProjectError) as refused:
        names(package="shop", database="Shop")
    assert str(refused.value) == (
        "--database 'Shop' must be a lowercase Python identifier: a letter, then letters, digits or underscores "
        "(for example 'shop')."
    )


def test_an_empty_title_is_refused():
    with pytest.raises(NewProjectError) as refused:
        names(package="shop", title=" \t ")
    assert str(refused.value) == "--name must not be empty; it becomes the README's title."


def test_the_development_port_is_the_derived_one_or_the_next_free_one_up():
    derived = identity.derived_port("shop")
    assert new.development_port("shop", taken=lambda port: False) == derived
    taken = {derived, derived + 1} if derived + 1 in identity.DEVELOPMENT_PORTS else {derived}
    expected = max(taken) + 1 if max(taken) + 1 in identity.DEVELOPMENT_PORTS else identity.DEVELOPMENT_PORTS.start
    assert new.development_port("shop", taken=taken.__contains__) == expected


def test_the_development_port_wraps_around_the_range_and_falls_back_to_the_derived_one():
    ports = identity.DEVELOPMENT_PORTS
    name = next(n for n in (f"p{i}" for i in range(10_000)) if identity.derived_port(n) == ports.stop - 1)
    assert new.development_port(name, taken=lambda port: port == ports.stop - 1) == ports.start
    asked = []
    assert new.development_port(name, taken=lambda port: asked.append(port) or True) == ports.stop - 1
    assert len(asked) == 100 and asked[:2] == [ports.stop - 1, ports.start] and len(set(asked)) == 100


# -- the destination -------------------------------------------------------------------------------


def test_a_new_or_empty_private_destination_is_accepted(root, outside):
    new.check_destination(root, outside / "absent")
    empty = outside / "empty"
    empty.mkdir(mode=0o700)
    new.check_destination(root, empty)


@pytest.mark.parametrize("where", ["inside", "file", "full"])
def test_a_destination_inside_the_project_a_file_or_a_full_directory_is_refused(root, outside, where):
    dest = {"inside": root / "build" / "shop", "file": outside / "file", "full": outside / "full"}[where]
    (outside / "file").write_text("")
    (outside / "full").mkdir()
    (outside / "full" / "x").write_text("")
    said = {
        "inside": f"{dest} is inside this project; choose a directory outside it (e.g. ../shop).",
        "file": f"{dest} exists and is not a directory; choose a new directory.",
        "full": f"{dest} exists and is not empty; choose a new or empty directory.",
    }[where]
    with pytest.raises(NewProjectError) as refused:
        new.check_destination(root, dest)
    assert str(refused.value) == said


@pytest.mark.parametrize("bits", [0o020, 0o002, 0o022])
def test_an_empty_destination_others_can_write_is_refused_with_its_mode(root, outside, bits):
    dest = outside / "open"
    dest.mkdir()
    dest.chmod(0o755 | bits)
    with pytest.raises(NewProjectError) as refused:
        new.check_destination(root, dest)
    assert str(refused.value) == (
        f"{dest} is writable by other accounts (mode {0o755 | bits:o}), so another account could change the new "
        "project; choose a new directory, or an empty one that is yours and writable by you alone."
    )


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o1755, 0o2755])
def test_an_empty_destination_only_its_owner_can_write_is_accepted(root, outside, mode):
    dest = outside / "own"
    dest.mkdir()
    dest.chmod(mode)
    new.check_destination(root, dest)


def test_a_link_to_an_empty_private_directory_is_refused(root, outside):
    target = outside / "target"
    target.mkdir(mode=0o700)
    link = outside / "link"
    link.symlink_to(target)
    with pytest.raises(NewProjectError, match=r"link is a symbolic link, so another account could change"):
        new.check_destination(root, link)


@needs_root
def test_an_empty_directory_another_account_owns_is_refused_naming_the_owner(root, outside):
    dest = outside / "theirs"
    dest.mkdir(mode=0o700)
    os.chown(dest, 65534, 65534)
    with pytest.raises(NewProjectError, match=r"theirs is owned by uid 65534, not by this user, so another account"):
        new.check_destination(root, dest)


# -- copying and undoing ---------------------------------------------------------------------------


@pytest.fixture
def renamer():
    return Renamer("project", "shop", "app", "shop")


def test_a_copy_renames_text_keeps_modes_links_and_binary_files(tmp_path, renamer):
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "run.py").write_text("from project.app import create_app\n")
    (source / "bin" / "run.py").chmod(0o755)
    (source / "blob.bin").write_bytes(b"\xff\xfeproject\x00")
    (source / "link").symlink_to("bin/run.py")
    chosen = new.Names("shop", "Corner Shop", "shop")
    for relative in ("bin/run.py", "blob.bin", "link"):
        new._copy(source / relative, target / relative, relative, renamer, chosen, with_example=True)
    assert (target / "bin" / "run.py").read_text() == "from shop.app import create_app\n"
    assert stat.S_IMODE((target / "bin" / "run.py").stat().st_mode) == 0o755
    assert (target / "blob.bin").read_bytes() == b"\xff\xfeproject\x00"
    assert (target / "link").is_symlink() and os.readlink(target / "link") == "bin/run.py"


@pytest.mark.parametrize(
    ("relative", "text", "copied"),
    [
        ("README.md", "# Flask + PostgreSQL\n\nUse project/.\n", "# Corner Shop\n\nUse shop/.\n"),
        ("README.md", "Intro\n# Title\n", "Intro\n# Title\n"),  # no title line first: left alone
        ("docs/README.md", "# Other\n", "# Other\n"),  # only the top-level README is the project's
    ],
)
def test_the_readmes_title_becomes_the_projects(tmp_path, renamer, relative, text, copied):
    source = tmp_path / "source" / relative
    source.parent.mkdir(parents=True)
    source.write_text(text)
    target = tmp_path / "target" / relative
    new._copy(source, target, relative, renamer, new.Names("shop", "Corner Shop", "shop"), with_example=True)
    assert target.read_text() == copied


@pytest.mark.parametrize("remove", [True, False])
def test_undoing_empties_or_removes_the_destination_and_never_follows_a_link(tmp_path, remove):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    dest = tmp_path / "dest"
    (dest / "sub" / "deeper").mkdir(parents=True)
    (dest / "file").write_text("x")
    (dest / "dirlink").symlink_to(outside)
    (dest / "filelink").symlink_to(outside / "keep")
    new._empty(dest, remove=remove)
    assert dest.exists() is not remove
    if not remove:
        assert list(dest.iterdir()) == []
    assert (outside / "keep").read_text() == "mine"


# -- tidying ---------------------------------------------------------------------------------------


def test_long_lines_are_found_against_the_projects_limit_outside_migrations_and_hidden_folders(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 10\n")
    for relative in ("a.py", "pkg/b.py", "migrations/c.py", ".venv/d.py", "e.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x = 1\n" + "y = 123456\n" + "z = 1234567\n")
    assert new.long_lines(tmp_path) == [("a.py", 3), ("pkg/b.py", 3)]


@pytest.mark.parametrize("pyproject", [None, "[tool.other]\n", "not toml ["])
def test_without_a_ruff_line_length_the_limit_is_ruffs_default_of_88(tmp_path, pyproject):
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    (tmp_path / "a.py").write_text("x" * 88 + "\n" + "y" * 89 + "\n")
    assert new.long_lines(tmp_path) == [("a.py", 2)]


LONG = 'name = "a string that will not fit in forty"'
TIDIED = "import os\nimport sys\n\nx = (1, 2)\n" + LONG + "\n"


def test_tidying_sorts_the_imports_formats_and_reports_long_lines(scratch):
    tmp_path = scratch
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 40\n")
    (tmp_path / "a.py").write_text("import sys\nimport os\nx=(1,\n  2)\nname = 'a string that will not fit in forty'\n")
    notes = new._tidy(tmp_path)
    assert (tmp_path / "a.py").read_text() == TIDIED
    assert notes == [f"a.py:{TIDIED.splitlines().index(LONG) + 1} is now longer than the line limit; wrap it."]


def test_tidying_says_which_ruff_step_failed_and_why(scratch):
    tmp_path = scratch
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 'not a number'\n")
    (tmp_path / "a.py").write_text("import os\n")
    notes = new._tidy(tmp_path)
    assert len(notes) == 1 and notes[0].startswith("`ruff check --select I --fix --quiet` failed there: ")
    said = notes[0].partition(" failed there: ")[2]
    assert "line-length" in said and not said.startswith(("b'", 'b"'))  # ruff's words, not a repr of its bytes


def test_without_ruff_tidying_is_left_to_the_user(tmp_path, monkeypatch):
    monkeypatch.setattr(new.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(new.shutil, "which", lambda name: None)
    assert new._tidy(tmp_path) == [
        "ruff is not installed: run `ruff check --select I --fix . && ruff format .` there before linting."
    ]


def test_this_pythons_ruff_wins_over_one_on_the_path(scratch, monkeypatch):
    monkeypatch.setattr(new.shutil, "which", lambda name: "/bin/false")  # a "ruff" that fails whatever it is asked
    (scratch / "a.py").write_text("import sys\nimport os\n")
    assert new._tidy(scratch) == []
    assert (scratch / "a.py").read_text() == "import os\nimport sys\n"


def test_a_ruff_on_the_path_is_used_when_this_python_has_none(scratch, monkeypatch):
    tmp_path = scratch
    ruff = subprocess.run(
        [sys.executable, "-c", "import ruff, sys; print(ruff.find_ruff_bin())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    monkeypatch.setattr(new.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(new.shutil, "which", lambda name: ruff if name == "ruff" else None)
    (tmp_path / "a.py").write_text("import sys\nimport os\n")
    assert new._tidy(tmp_path) == []
    assert (tmp_path / "a.py").read_text() == "import os\nimport sys\n"


# -- reading the project ---------------------------------------------------------------------------


def test_the_package_to_rename_is_the_one_wsgi_imports_absolutely(tmp_path):
    (tmp_path / "wsgi.py").write_text('"""Doc."""\nimport os\nfrom . import local\nfrom shop.app import make\n')
    assert new.current_package(tmp_path) == "shop"
    assert new.current_package(ROOT) == "project"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "cannot be read as Python"),
        ("def (:\n", "cannot be read as Python"),
        ("import os\nfrom . import x\n", "imports no package; it should build the app with `from PACKAGE import ...`."),
    ],
)
def test_a_wsgi_module_that_names_no_package_is_refused(tmp_path, text, said):
    if text is not None:
        (tmp_path / "wsgi.py").write_text(text)
    with pytest.raises(NewProjectError) as refused:
        new.current_package(tmp_path)
    assert str(refused.value).startswith(str(tmp_path / "wsgi.py")) and said in str(refused.value)


def test_the_files_git_tracks_or_would_track_that_exist_are_copied(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    for name in ("kept.txt", "gone.txt", "untracked.txt", "ignored.txt"):
        (tmp_path / name).write_text("x")
    subprocess.run(["git", "-C", str(tmp_path), "add", "kept.txt", "gone.txt"], check=True)
    (tmp_path / "gone.txt").unlink()
    assert new.tracked_files(tmp_path) == [".gitignore", "kept.txt", "untracked.txt"]


def test_a_directory_outside_git_is_refused(outside):
    with pytest.raises(NewProjectError) as refused:
        new.tracked_files(outside)
    assert str(refused.value) == f"{outside} is not a git checkout; `inv new` copies the files git tracks."


def test_without_git_the_copy_is_refused_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NewProjectError) as refused:
        new.tracked_files(tmp_path)
    assert str(refused.value) == "git is not installed; `inv new` copies the files git tracks."


def test_a_failing_git_command_is_named_with_gits_own_words(outside):
    with pytest.raises(NewProjectError) as refused:
        new._git(outside, "-c", "core.pager=cat", "log", "--oneline")
    message = str(refused.value)
    assert message.startswith(f"`git log` failed in {outside}: fatal: not a git repository")
    assert "\n" not in message and "  " not in message


def test_git_output_is_returned_as_it_printed_it(tmp_path):
    assert new._git(tmp_path, "--version").startswith("git version ")


def test_a_git_identity_needs_both_a_name_and_an_email(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    assert new._has_identity(repo) is False
    subprocess.run(["git", "-C", str(repo), "config", "user.name", "Someone"], check=True)
    assert new._has_identity(repo) is False
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "someone@example.com"], check=True)
    assert new._has_identity(repo) is True
    subprocess.run(["git", "-C", str(repo), "config", "--unset", "user.name"], check=True)
    assert new._has_identity(repo) is False


# -- a whole project, in-process -------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    """An environment in which git knows no identity: a fresh account's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_AUTHOR", "GIT_COMMITTER")) and k != "EMAIL"}
    return {**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}


# The small project's own names, none of them this project's (which `inv new` would rename in this very file),
# and the package the tests give the new one: never this project's, which would shadow it.
SOURCE_PACKAGE, SOURCE_DATABASE, SOURCE_NAME = "inventory", "stock", "warehouse"
NEW = "shop" if new.current_package(ROOT) != "shop" else "store"


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A small project of the test's own, committed: the shape `inv new` copies (wsgi.py names the package, the
    configs name the databases and the port, pyproject.toml the project), with a link, a binary and a script."""
    home = tmp_path / "home"
    home.mkdir()
    for key, value in git_env(home).items():
        monkeypatch.setenv(key, value)
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    root = tmp_path / "source"
    (root / "config").mkdir(parents=True)
    for config in ("development", "testing", "production"):
        entries = json.loads((ROOT / "config" / f"{config}.json").read_text())
        database = SOURCE_DATABASE + {"development": "_dev", "testing": "_test"}.get(config, "")
        for entry in entries:
            if entry["name"] == "POSTGRES_DB":
                entry["value"] = database
        (root / "config" / f"{config}.json").write_text(json.dumps(entries, indent=2) + "\n")
    package = SOURCE_PACKAGE
    files = {
        "wsgi.py": f"from {package}.app import app\n",
        f"{package}/__init__.py": "",
        f"{package}/app.py": f'import {package}.models\n\napp = "{package}"\n',
        f"{package}/models.py": "",
        "pyproject.toml": f'[tool.devtools]\nname = "{SOURCE_NAME}"\n\n[tool.ruff]\nline-length = 100\n',
        "README.md": f"# Flask + PostgreSQL\n\nThe app lives in {package}/.\n",
        "bin/serve": "#!/bin/sh\nexec gunicorn wsgi:app\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "bin" / "serve").chmod(0o755)
    (root / "logo.bin").write_bytes(b"\x89PNG\xff " + package.encode())
    (root / "docs").symlink_to("bin")  # a link to a directory, copied as the link it is
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "-A"],
        ["-c", "user.name=A", "-c", "user.email=a@b", "commit", "-qm", "one"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)
    return root


def git_out(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_a_new_project_is_the_source_renamed_in_one_commit_of_its_own(source, outside):
    dest = outside / "corner-shop"
    created = new.create(source, dest, package=NEW, title="Corner  Shop")

    assert created.dest == dest and created.names == new.Names(NEW, "Corner Shop", NEW)
    listed = sorted(
        p.relative_to(dest).as_posix() for p in dest.rglob("*") if not p.relative_to(dest).parts[0].startswith(".")
    )
    configs = ["config/development.json", "config/production.json", "config/testing.json"]
    package = [NEW, f"{NEW}/__init__.py", f"{NEW}/app.py", f"{NEW}/models.py"]
    top = ["CHANGELOG.md", "README.md", "bin", "bin/serve", "config", *configs, "docs", "logo.bin", "pyproject.toml"]
    assert listed == sorted([*top, *package, "wsgi.py"])
    assert (dest / "wsgi.py").read_text() == f"from {NEW}.app import app\n"
    assert (dest / NEW / "app.py").read_text() == f'import {NEW}.models\n\napp = "{NEW}"\n'
    assert (dest / "README.md").read_text() == f"# Corner Shop\n\nThe app lives in {NEW}/.\n"
    assert stat.S_IMODE((dest / "bin" / "serve").stat().st_mode) == 0o755
    assert (dest / "logo.bin").read_bytes() == b"\x89PNG\xff " + SOURCE_PACKAGE.encode()  # binary: left alone
    assert (dest / "docs").is_symlink() and os.readlink(dest / "docs") == "bin"
    assert new.current_database(dest) == NEW and new.current_database(source) == SOURCE_DATABASE
    assert new.current_identity(dest) == Identity(NEW, created.port)  # the project named after its package
    assert created.port != new.current_identity(source).port and created.port in identity.DEVELOPMENT_PORTS

    source_commit = git_out(source, "rev-parse", "--short", "HEAD")
    assert (
        f"- Corner Shop, started from the Flask + PostgreSQL project setup at commit {source_commit}."
        in (dest / "CHANGELOG.md").read_text()
    )
    assert git_out(dest, "log", "--format=%an <%ae>|%s") == (
        f"inv new <inv-new@localhost>|Start Corner Shop from the Flask + PostgreSQL project setup ({source_commit})"
    )
    assert git_out(dest, "branch", "--show-current") == "main" and git_out(dest, "status", "--porcelain") == ""
    assert created.commit == git_out(dest, "rev-parse", "--short", "HEAD") and created.notes == []
    assert git_out(source, "status", "--porcelain") == ""  # the source is left as it was


def test_a_new_project_is_committed_by_the_users_own_identity_when_git_has_one(source, outside):
    subprocess.run(["git", "config", "--global", "user.name", "Ada"], check=True)
    subprocess.run(["git", "config", "--global", "user.email", "ada@example.com"], check=True)
    dest = outside / NEW
    new.create(source, dest)
    assert git_out(dest, "log", "--format=%an <%ae>") == "Ada <ada@example.com>"


def test_a_name_the_source_uses_at_its_top_level_is_refused_before_anything_is_written(source, outside, monkeypatch):
    for taken in ("wsgi", "bin", "config"):
        with pytest.raises(NewProjectError, match=f"--package '{taken}' is already a top-level name"):
            new.create(source, outside / "x", package=taken)
    assert list(outside.iterdir()) == []
    monkeypatch.syspath_prepend(str(source))  # importable, as it is where `inv new` runs: still free to keep
    new.create(source, outside / "same", package=SOURCE_PACKAGE)
    assert (outside / "same" / SOURCE_PACKAGE / "app.py").is_file()


@pytest.mark.parametrize("existed", [False, True])
def test_a_failure_half_way_leaves_the_destination_as_it_was(source, outside, monkeypatch, existed):
    dest = outside / NEW
    if existed:
        dest.mkdir(mode=0o700)

    def fail(where):
        assert (where / NEW / "app.py").is_file()  # half made
        raise RuntimeError("stopped half way")

    monkeypatch.setattr(new, "_tidy", fail)
    with pytest.raises(RuntimeError, match="stopped half way"):
        new.create(source, dest, package=NEW)
    assert dest.is_dir() is existed and (not existed or list(dest.iterdir()) == [])


def test_without_the_example_a_project_that_has_none_left_is_refused_in_one_sentence(source, outside):
    with pytest.raises(NewProjectError) as refused:
        new.create(source, outside / NEW, with_example=False)
    assert str(refused.value) == (
        "This project no longer has the example app that --no-example leaves out; run `inv new` without it."
    )
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("with_example", [True, False])
def test_without_the_example_its_files_go_its_mentions_are_edited_and_its_replacements_written(
    source, outside, monkeypatch, with_example
):
    # The small project's own example, listed as devtools/example.py lists this project's.
    users, app, models = f"{SOURCE_PACKAGE}/users.py", f"{SOURCE_PACKAGE}/app.py", f"{SOURCE_PACKAGE}/models.py"
    (source / users).write_text(f'"""The {SOURCE_PACKAGE} users."""\n')  # uncommitted, as a change in progress
    monkeypatch.setattr(new.example, "EXAMPLE_FILES", (users,))
    monkeypatch.setattr(new.example, "EDITS", ((app, f"import {SOURCE_PACKAGE}.models\n", "import os\n"),))
    monkeypatch.setattr(new.example, "ADDED", {models: f"from {SOURCE_PACKAGE}.app import app\n"})
    dest = outside / "not" / "yet" / NEW  # parents made as needed
    new.create(source, dest, package=NEW, database="depot", with_example=with_example)

    assert (dest / NEW / "users.py").exists() is with_example
    app_text = f'import {NEW}.models\n\napp = "{NEW}"\n' if with_example else f'import os\n\napp = "{NEW}"\n'
    assert (dest / NEW / "app.py").read_text() == app_text
    assert (dest / NEW / "models.py").read_text() == ("" if with_example else f"from {NEW}.app import app\n")
    assert new.current_database(dest) == "depot"
    source_commit = git_out(source, "rev-parse", "--short", "HEAD")
    assert f"at commit {source_commit} plus uncommitted changes." in (dest / "CHANGELOG.md").read_text()


def test_a_new_project_keeps_its_text_whatever_the_locale(source, outside, monkeypatch, ascii_locale):
    users, app, models = f"{SOURCE_PACKAGE}/users.py", f"{SOURCE_PACKAGE}/app.py", f"{SOURCE_PACKAGE}/models.py"
    (source / users).write_text(f'"""The {SOURCE_PACKAGE} users."""\n')
    (source / "wsgi.py").write_text(f"from {SOURCE_PACKAGE}.app import app  # « the app »\n", encoding="utf-8")
    (source / app).write_text(f'import {SOURCE_PACKAGE}.models\n\napp = "{SOURCE_PACKAGE}"  # café\n', encoding="utf-8")
    monkeypatch.setattr(new.example, "EXAMPLE_FILES", (users,))
    monkeypatch.setattr(new.example, "EDITS", ())
    monkeypatch.setattr(new.example, "ADDED", {models: f"from {SOURCE_PACKAGE}.app import app  # — added\n"})
    created = new.create(source, outside / NEW, package=NEW, title="Café Corner", with_example=False)

    def text(relative):
        return (created.dest / relative).read_text(encoding="utf-8")

    assert text("wsgi.py") == f"from {NEW}.app import app  # « the app »\n"
    assert text(f"{NEW}/app.py") == f'import {NEW}.models\n\napp = "{NEW}"  # café\n'
    assert text(f"{NEW}/models.py") == f"from {NEW}.app import app  # — added\n"
    assert text("README.md").startswith("# Café Corner\n")
    assert "- Café Corner, started from the Flask + PostgreSQL project setup" in text("CHANGELOG.md")
    assert created.notes == []


def test_the_source_is_read_from_its_configs_whatever_the_environment_says(source, monkeypatch):
    for config in ("development", "production"):
        path = source / "config" / f"{config}.json"
        entries = json.loads(path.read_text())
        secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mail"  # no value here, nor needed
        path.write_text(json.dumps([*entries, {"name": "MAIL_PASSWORD", "valueFrom": secret}]))
    port = next(int(e["value"]) for e in json.loads((source / "config" / "development.json").read_text())
                if e["name"] == "POSTGRES_PORT")  # fmt: skip
    for name, value in {"APPLICATION_CONFIG": "testing", "POSTGRES_DB": "elsewhere", "POSTGRES_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    assert new.current_database(source) == SOURCE_DATABASE
    assert new.current_identity(source) == Identity(SOURCE_NAME, port)


def test_the_identity_asked_for_is_the_new_projects_not_the_current_directorys(source, outside, monkeypatch):
    subprocess.run(["git", "config", "user.name", "Here"], cwd=source, check=True)
    subprocess.run(["git", "config", "user.email", "here@example.com"], cwd=source, check=True)
    monkeypatch.chdir(source)
    dest = outside / NEW
    new.create(source, dest)
    assert git_out(dest, "log", "--format=%an <%ae>") == "inv new <inv-new@localhost>"
