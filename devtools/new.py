"""Start a new project from this one (``inv new DEST --package NAME``).

The new project gets the files git tracks, the package renamed wherever it is referred to as a package or a
path, databases (and the production image and secret paths) named after it, a fresh changelog and a
fresh git repository with one commit. Prose keeps the English word: only these count as references to the
package, and only they are renamed:

- in Python code, the name itself (``import project``, ``from project.app import ...``);
- anywhere, a module path (``project.configuration``), a path (``project/``), the name quoted on its own
  (``"project"``, ``'project'``, ```project```) and an import written out (``from project import ...``);
- in a Dockerfile or ``.dockerignore``, the word outside comments (``RUN python -m compileall -q project``).

Why not copier: it renders Jinja templates, so this repository's own files would have to become templates
(``{{ package }}/``, ``from {{ package }} import ...``) that cannot run or be tested as they stand. Renaming
a working project keeps this one runnable and proves the copy with its own tests.
"""

from __future__ import annotations

import ast
import importlib.util
import keyword
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools import example, identity
from devtools.errors import NewProjectError
from devtools.processes import port_in_use
from devtools.renaming import Identity, Renamer
from project.configuration import load_config

# A lowercase identifier that starts with a letter: a PEP 8 package name that is also a valid Docker image
# name and a PostgreSQL identifier that needs no quoting.
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
# Room for the suffixes the tooling adds (``_scenario_<name>_template``) within PostgreSQL's 63 bytes.
MAX_DATABASE_LENGTH = 30
CHANGELOG = """# Changelog

All notable changes to this project are documented here, in the
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/) format.

## [Unreleased]

### Added
- {name}, started from the Flask + PostgreSQL project setup at commit {commit}.
"""


@dataclass(frozen=True)
class Names:
    """What the new project is called: its package, its title and the base of its database names."""

    package: str
    title: str
    database: str

    @property
    def project_name(self) -> str:
        """The project's name outside Python (compose projects, deployments, temporary directories)."""
        name = self.package.replace("_", "-").strip("-")
        return name if identity.NAME.match(name) else f"{name}-app"

    @property
    def databases(self) -> tuple[str, str, str]:
        """The development, testing and production database names."""
        return f"{self.database}_dev", f"{self.database}_test", self.database


@dataclass
class Created:
    """The outcome of :func:`create`: where the project is, what it is called, its commit, and what to check."""

    dest: Path
    names: Names
    commit: str
    notes: list[str] = field(default_factory=list)
    port: int | None = None


def current_package(root: Path) -> str:
    """Return the name of the package ``wsgi.py`` builds the app from: the package to rename."""
    path = root / "wsgi.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError) as exc:
        raise NewProjectError(f"{path} cannot be read as Python ({exc}); it names the package to rename.") from None
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            return node.module.split(".")[0]
    raise NewProjectError(f"{path} imports no package; it should build the app with `from PACKAGE import ...`.")


def current_identity(root: Path) -> Identity:
    """Return the project's name and the port its development cluster listens on."""
    config = load_config("development", environ={}, config_dir=root / "config", require_secrets=False)
    return Identity(identity.project_name(root), int(config["POSTGRES_PORT"]))


def development_port(name: str, taken: Callable[[int], bool] = port_in_use) -> int:
    """Return the development port for project ``name``: the one derived from the name, or the next one up that
    nothing on this machine listens on."""
    ports = identity.DEVELOPMENT_PORTS
    start = identity.derived_port(name) - ports.start
    for step in range(100):
        port = ports.start + (start + step) % len(ports)
        if not taken(port):
            return port
    return identity.derived_port(name)


def current_database(root: Path) -> str:
    """Return the production database's name, the base of the other configs' database names."""
    config = load_config("production", environ={}, config_dir=root / "config", require_secrets=False)
    return config["POSTGRES_DB"]


def tracked_files(root: Path) -> list[str]:
    """Return the paths under ``root`` that git tracks or would (not ignored) and that exist in its working tree:
    the tree as it stands, committed or not."""
    listing = ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    try:
        result = subprocess.run(listing, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise NewProjectError("git is not installed; `inv new` copies the files git tracks.") from None
    if result.returncode != 0:
        raise NewProjectError(f"{root} is not a git checkout; `inv new` copies the files git tracks.")
    # A link is copied as a link, whatever it points to (a directory too); a submodule is no file of ours.
    return sorted({p for p in result.stdout.split("\0") if p and ((root / p).is_symlink() or (root / p).is_file())})


def choose_names(
    dest: Path,
    current: str,
    reserved: set[str],
    package: str | None = None,
    title: str | None = None,
    database: str | None = None,
) -> Names:
    """Return the new project's names (defaults derived from DEST), or raise NewProjectError naming the bad one."""
    if package is None:
        package = dest.name.replace("-", "_").lower()
        where = f"The package name '{package}' (from DEST {dest.name!r})"
        hint, fix = "; pass --package NAME", "pass --package with another name"
    else:
        where, hint, fix = f"--package '{package}'", "", "choose another name"
    _check_name(where, package, hint)
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        raise NewProjectError(f"{where} is a Python keyword; {fix}.")
    if package in reserved:
        raise NewProjectError(f"{where} is already a top-level name in the project; {fix}.")
    if package != current and (package in sys.stdlib_module_names or importlib.util.find_spec(package)):
        raise NewProjectError(f"{where} would shadow the installed module '{package}'; {fix}.")
    database = package if database is None else database
    _check_name(f"--database '{database}'", database, "")
    if len(database) > MAX_DATABASE_LENGTH:
        raise NewProjectError(f"--database '{database}' is longer than {MAX_DATABASE_LENGTH} characters.")
    title = package.replace("_", " ").capitalize() if title is None else " ".join(title.split())
    if not title:
        raise NewProjectError("--name must not be empty; it becomes the README's title.")
    return Names(package, title, database)


def _check_name(where: str, name: str, hint: str) -> None:
    if not _NAME.match(name):
        raise NewProjectError(
            f"{where} must be a lowercase Python identifier: a letter, then letters, digits or underscores "
            f"(for example 'shop'){hint}."
        )


def check_destination(root: Path, dest: Path) -> None:
    """Raise NewProjectError unless ``dest`` is a new or empty directory outside the project."""
    if dest.resolve().is_relative_to(root.resolve()):
        raise NewProjectError(f"{dest} is inside this project; choose a directory outside it (e.g. ../shop).")
    if dest.exists() and not dest.is_dir():
        raise NewProjectError(f"{dest} exists and is not a directory; choose a new directory.")
    if dest.is_dir() and any(dest.iterdir()):
        raise NewProjectError(f"{dest} exists and is not empty; choose a new or empty directory.")
    if os.path.lexists(dest) and (problem := _not_private(dest)):
        raise NewProjectError(
            f"{dest} {problem}, so another account could change the new project; choose a new "
            "directory, or an empty one that is yours and writable by you alone."
        )


def _not_private(dest: Path) -> str | None:
    """Say how an existing ``dest`` is open to another account (a link, another owner, writable by others)."""
    st = os.lstat(dest)
    if dest.is_symlink():
        return "is a symbolic link"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by this user"
    return f"is writable by other accounts (mode {st.st_mode & 0o7777:o})" if st.st_mode & 0o022 else None


def create(
    root: Path,
    dest: Path,
    package: str | None = None,
    title: str | None = None,
    database: str | None = None,
    with_example: bool = True,
) -> Created:
    """Create a new project in ``dest`` from the project at ``root``, with the example app or without it (see
    devtools/example.py); return what was created."""
    dest = Path(dest).expanduser().absolute()
    files = tracked_files(root)
    old_package = current_package(root)
    reserved = {p.split("/")[0].removesuffix(".py") for p in files} - {old_package}
    names = choose_names(dest, old_package, reserved, package, title, database)
    if not with_example and not example.present(files):
        raise NewProjectError(
            "This project no longer has the example app that --no-example leaves out; run `inv new` without it."
        )
    check_destination(root, dest)
    old = current_identity(root)
    new = Identity(names.project_name, development_port(names.project_name))
    renamer = Renamer(old_package, names.package, current_database(root), names.database, (old, new))
    commit = _source_commit(root)
    existed = dest.is_dir()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        for relative in files if with_example else [f for f in files if example.kept(f)]:
            _copy(root / relative, dest / renamer.path(relative), relative, renamer, names, with_example)
        for relative, text in {} if with_example else example.ADDED.items():
            (dest / renamer.path(relative)).write_text(renamer.file(relative, text), encoding="utf-8")
        (dest / "CHANGELOG.md").write_text(CHANGELOG.format(name=names.title, commit=commit), encoding="utf-8")
        notes = _tidy(dest)
        _git(dest, "init", "-q", "-b", "main")
        _git(dest, "add", "-A")
        # Without a git identity (a fresh account, a CI box) the first commit names the generator instead of failing.
        identity = [] if _has_identity(dest) else ["-c", "user.name=inv new", "-c", "user.email=inv-new@localhost"]
        message = f"Start {names.title} from the Flask + PostgreSQL project setup ({commit})"
        _git(dest, *identity, "commit", "-q", "-m", message)
    except BaseException:
        # Leave DEST as it was, so that running the command again after a fix just works.
        _empty(dest, remove=not existed)
        raise
    return Created(dest, names, _git(dest, "rev-parse", "--short", "HEAD").strip(), notes, new.port)


def _empty(dest: Path, remove: bool) -> None:
    if remove:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _copy(source: Path, target: Path, relative: str, renamer: Renamer, names: Names, with_example: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        target.symlink_to(source.readlink())
        return
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        shutil.copy2(source, target)  # not text: no references to rename
        return
    text = renamer.file(relative, text if with_example else example.edit(relative, text))
    if relative == "README.md" and text.startswith("# "):
        text = f"# {names.title}\n" + text.partition("\n")[2]
    target.write_text(text, encoding="utf-8")
    shutil.copymode(source, target)


def _tidy(dest: Path) -> list[str]:
    """Sort imports and format with ruff (a renamed package sorts elsewhere); return what is left to check."""
    ruff = [sys.executable, "-m", "ruff"] if importlib.util.find_spec("ruff") else None
    if ruff is None and shutil.which("ruff"):
        ruff = [shutil.which("ruff")]
    if ruff is None:
        return ["ruff is not installed: run `ruff check --select I --fix . && ruff format .` there before linting."]
    for args in (["check", "--select", "I", "--fix", "--quiet", "."], ["format", "--quiet", "."]):
        result = subprocess.run([*ruff, *args], cwd=dest, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            return [f"`ruff {' '.join(args[:-1])}` failed there: {(result.stdout + result.stderr).strip()}"]
    return [f"{path}:{number} is now longer than the line limit; wrap it." for path, number in long_lines(dest)]


def long_lines(dest: Path) -> list[tuple[str, int]]:
    """Return (path, line number) of each Python line in ``dest`` longer than its ruff line-length."""
    try:
        with (dest / "pyproject.toml").open("rb") as file:
            limit = tomllib.load(file)["tool"]["ruff"]["line-length"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        limit = 88  # ruff's default
    found = []
    for path in sorted(dest.rglob("*.py")):
        relative = path.relative_to(dest).as_posix()
        if relative.startswith(("migrations/", ".")):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if len(line) > limit:
                found.append((relative, number))
    return found


def _source_commit(root: Path) -> str:
    """Name what the project at ``root`` stands at: its commit, with a note when the tree differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    if head.returncode != 0:
        return "no commit yet"
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout
    return head.stdout.strip() + (" plus uncommitted changes" if changed.strip() else "")


def _has_identity(cwd: Path) -> bool:
    """Tell whether git knows who commits in ``cwd`` (user.name and user.email, from any config)."""
    return all(
        subprocess.run(["git", "config", key], cwd=cwd, capture_output=True, text=True).stdout.strip()
        for key in ("user.name", "user.email")
    )


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        message = " ".join((result.stderr or result.stdout).split())
        command = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise NewProjectError(f"`git {command}` failed in {cwd}: {message}")
    return result.stdout
