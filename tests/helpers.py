"""Helpers shared by the tests and benchmarks: configs pointed at a throwaway server, and the real servers
(tasks, gunicorn) run on free ports."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.processes import free_port
from devtools.target import Target, resolve, throwaway_config

ROOT = Path(__file__).resolve().parent.parent
STRONG_SECRET_KEY = "q3J9v2-LmZ8xT1pWc4Rb7NfY0aKs5HdE6gUo"
STRONG_PASSWORD = "Zr8-tQ2vLx9Wm4Kp7Ns1Yb6H"
OWNER_PASSWORD = "Hd5-Kq8wPz3Vn7Lr2Ty6Mb9C"
# Settings that pass every deployment check.
STRONG = {
    "FLASK_DEBUG": "false",
    "SECRET_KEY": STRONG_SECRET_KEY,
    "SESSION_COOKIE_SECURE": "true",
    "POSTGRES_PASSWORD": STRONG_PASSWORD,
    "POSTGRES_SSLMODE": "require",
}


PROJECT_PARTS = (
    *("project", "devtools", "config", "migrations", "scenarios", "docker"),
    *("tasks.py", "wsgi.py", "gunicorn.conf.py", "pyproject.toml"),
)


def copy_project(target: Path, **development: str) -> Path:
    """Copy what the tasks need into ``target``, with ``development``'s entries set in its
    config/development.json (a free POSTGRES_PORT, say, so its local cluster is never the developer's)."""
    for name in PROJECT_PARTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target / name)
    set_entries(target, **development)
    return target


def set_entries(target: Path, **development: str) -> None:
    """Set entries of the config/development.json in the project copy ``target``."""
    config = target / "config" / "development.json"
    entries = json.loads(config.read_text())
    for entry in entries:
        if entry["name"] in development:
            entry["value"] = development[entry["name"]]
    config.write_text(json.dumps(entries))


def one_sentence(text: str) -> str:
    """Return the one line of ``text``, failing the test when it has more or holds a traceback."""
    lines = [line for line in text.strip().splitlines() if line]
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def config_for(server, dbname: str):
    """Return the testing config pointed at ``dbname`` on a throwaway server (or its cluster), ignoring the shell."""
    return throwaway_config(getattr(server, "cluster", server), dbname)


def target_for(server, dbname: str) -> Target:
    """Return the target of :func:`config_for`."""
    return resolve(config_for(server, dbname))


def production_database(cluster, dbname: str) -> None:
    """Create ``dbname`` on ``cluster`` as production has it: owned and migrated by ``app_owner``, with ``app``
    allowed only to read and write rows (the passwords are STRONG_PASSWORD and OWNER_PASSWORD)."""
    from devtools import lifecycle

    config = throwaway_config(cluster, dbname).replace(
        POSTGRES_USER="app",
        POSTGRES_PASSWORD=STRONG_PASSWORD,
        POSTGRES_MIGRATION_USER="app_owner",
        POSTGRES_MIGRATION_PASSWORD=OWNER_PASSWORD,
        POSTGRES_PASSFILE="",
    )
    lifecycle.init_database(Target(config, cluster))


def production_env(cluster, dbname: str, **extra: str) -> dict[str, str]:
    """Environment for the production config pointed at ``dbname`` (see :func:`production_database`) on
    ``cluster``, connecting as the app role over TLS."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "GUNICORN_", "FLASK_", "PG"))}
    return {
        **base,
        "APPLICATION_CONFIG": "production",
        "SECRET_KEY": STRONG_SECRET_KEY,
        "POSTGRES_PASSWORD": STRONG_PASSWORD,
        "POSTGRES_HOST": cluster.host,
        "POSTGRES_PORT": str(cluster.port),
        "POSTGRES_USER": "app",
        "POSTGRES_DB": dbname,
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def request(url: str, method: str = "GET", body: bytes | None = None, timeout: float = 10.0, headers=None):
    """Return (status, body bytes) for one HTTP request; HTTP errors are answers, not exceptions."""
    headers = {**({"Content-Type": "application/json"} if body is not None else {}), **(headers or {})}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    """Block until ``url``/healthz answers 200; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before serving")
        with contextlib.suppress(OSError):
            if request(f"{url}/healthz", timeout=1)[0] == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def task_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running a task: ours, minus settings a test must choose itself, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "APPLICATION_CONFIG", "SECRET_KEY"))}
    return {**base, **(extra or {})}


def inv(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``inv ARGS`` in ``cwd`` as a user would, without a terminal; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=task_env(env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


# Every long-running process a test starts, so that none outlives the run (see stop_started).
started: set[subprocess.Popen] = set()


def default_signals() -> None:
    """Give a child a working Ctrl-C and SIGQUIT: a run started in the background by a shell without job control
    ignores both (an xdist worker ignores SIGINT), and children inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def spawn(argv: list[str], **options) -> subprocess.Popen:
    """Start ``argv`` with SIGINT and SIGQUIT at their defaults, and remember it so the run stops it at the latest."""
    process = subprocess.Popen(argv, preexec_fn=default_signals, **options)
    started.add(process)
    return process


def stop_started() -> None:
    """Kill whatever a test started and left running (its whole process group when it leads one)."""
    for process in list(started):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(process.pid) == process.pid:
                    os.killpg(process.pid, signal.SIGKILL)
                else:
                    process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        started.discard(process)


def start_task(*args: str, url: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a serving task (dev, prod, scenario.serve) in its own process group; return it once ``url`` answers."""
    process = spawn(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=task_env(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_serving(url, process, timeout=60)
    except BaseException:
        interrupt(process)
        raise
    return process


def interrupt(process: subprocess.Popen) -> str:
    """Press Ctrl-C as a terminal does (SIGINT to the whole process group); return the process's output."""
    with contextlib.suppress(ProcessLookupError):  # it may have exited already
        os.killpg(process.pid, signal.SIGINT)
    return process.communicate(timeout=30)[0].decode()


def children(pid: int) -> list[int]:
    """Return the pids of process ``pid``'s children (pgrep, on Linux and macOS alike)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


class Gunicorn:
    def __init__(self, process: subprocess.Popen, url: str):
        self.process = process
        self.url = url

    def workers(self) -> set[int]:
        """Return the pids of the master's worker processes."""
        return set(children(self.process.pid))


@contextlib.contextmanager
def gunicorn(env: dict[str, str], app: str = "wsgi:app", workers: int = 1, threads: int = 1, log=None):
    """Run gunicorn with the project's gunicorn.conf.py; yield it once it answers /healthz; stop it after."""
    port = free_port()
    env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "METRICS_BIND": f"127.0.0.1:{free_port()}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"), app]
    process = spawn(command, cwd=ROOT, env=env, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)
    server = Gunicorn(process, f"http://127.0.0.1:{port}")
    try:
        wait_until_serving(server.url, process)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def isolated(app, connection=None):
    """Run the block inside one outer transaction that is rolled back at its end.

    The app's engine is swapped for a connection holding that transaction, and the session joins it through
    savepoints, so ``db.session.commit()`` in the code under test commits only a savepoint. Pass a
    ``connection`` kept open across tests to save a pool checkout (and its liveness ping) per test; it is
    left open.
    """
    from project.extensions import db

    with app.app_context():
        engines = db.engines
        engine = engines[None]
        own = connection is None
        connection = engine.connect() if own else connection
        transaction = connection.begin()
        db.session.remove()
        db.session.configure(join_transaction_mode="create_savepoint")
        engines[None] = connection
        try:
            yield connection
        finally:
            db.session.remove()
            engines[None] = engine
            transaction.rollback()
            if own:
                connection.close()


class PasswordCatcher:
    """A program posing as PostgreSQL on ``host:port`` that asks every client for its password in cleartext, as
    another account's program could, and keeps what it receives."""

    def __init__(self, host: str, port: int) -> None:
        import socket
        import threading

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.received: list[bytes] = []
        self.clients = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), conn:
                conn.settimeout(5)
                self.clients += 1
                self._answer(conn)

    def _answer(self, conn) -> None:
        import struct

        length, code = struct.unpack("!ii", conn.recv(8))
        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
            conn.sendall(b"N")
            length, code = struct.unpack("!ii", conn.recv(8))
        conn.recv(length - 8)
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        head = conn.recv(5)
        if head[:1] == b"p":
            self.received.append(conn.recv(struct.unpack("!i", head[1:])[0] - 4))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def __enter__(self) -> PasswordCatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Killed(BaseException):
    """The process stopped here, as SIGKILL or the OOM killer would stop it."""


def end_session(config, pid: int) -> None:
    """End session ``pid`` from the server's side, as a restart or an administrator would, and wait until it is gone."""
    from devtools.databases import admin_cursor

    with admin_cursor(config) as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))


class AfterStatement:
    """A cursor that calls ``then(statement)`` right after it runs a statement starting with ``prefix``."""

    def __init__(self, cur, prefix: str, then) -> None:
        self.cur, self.prefix, self.then = cur, prefix, then

    def execute(self, query, params=None):
        self.cur.execute(query, params)
        text = query.as_string(self.cur) if hasattr(query, "as_string") else query
        if text.startswith(self.prefix):
            self.then(text)

    def __getattr__(self, name):
        return getattr(self.cur, name)


class KilledAfter(AfterStatement):
    """A cursor whose process is killed right after it runs a statement starting with ``prefix``."""

    def __init__(self, cur, prefix: str) -> None:
        super().__init__(cur, prefix, then=self.kill)

    @staticmethod
    def kill(statement: str):
        raise Killed(statement)
