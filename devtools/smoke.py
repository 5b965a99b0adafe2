"""Smoke-check the compose stacks on a real Docker engine: ``nox -s smoke`` or ``python -m devtools.smoke``.

For each config (default: development and production) it builds the images, starts the stack under its own
compose project (``<project name>-smoke-<config>``, on a free loopback port, so a developer's stack is left
alone), waits for ``web`` to be healthy, asks ``/readyz``, creates and reads a user, checks the data survives
``down`` and ``up``, stops ``web`` with SIGTERM and expects a clean exit well inside the grace period, and
removes everything with ``down --volumes``, also when a step fails. On the way it backs the database up to
the host, deletes the volume and restores the backup into a fresh one (``devtools.backups.stack``). The
production run also checks what issue-level promises depend on: TLS and the web role's privileges in the
database, and that a client's X-Forwarded-For never reaches the log.

Without a compose client or a reachable engine it says why and exits 0: nothing was checked, nothing failed.
Standard library only, like the config loader.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devtools import compose
from devtools.backups import stack as backups
from devtools.backups.stack import StackDatabase
from devtools.processes import free_port
from project.configuration import load_config
from project.errors import UserError

ROOT = compose.DOCKER_DIR.parent
CONFIGS = ("development", "production")
SPOOFED = "6.6.6.6"


class SmokeFailure(Exception):
    """A step of the smoke check failed; the message says which and what was seen."""


def unavailable() -> str | None:
    """Return why no stack can run here (no client, no engine), or None when one can."""
    try:
        compose.client()
        compose.engine_running()
    except (UserError, OSError) as exc:
        return str(exc)
    return None


def throwaway_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """Return random values for the secrets the shell does not set (the stack is deleted at the end)."""
    names = ("SECRET_KEY", "POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD")
    return {name: secrets.token_urlsafe(32) for name in names if not environ.get(name)}


@dataclass
class Stack:
    """One config's stack under a compose project of its own."""

    config_name: str
    port: int = field(default_factory=free_port)
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        environ = {**os.environ, **throwaway_secrets(os.environ)}
        config = load_config(self.config_name, environ=environ)
        self.env = {**environ, **compose.environ(config), "PUBLISHED_PORT": str(self.port)}
        self.project = compose.project_for(f"smoke-{self.config_name}")

    def say(self, message: str) -> None:
        line = f"[{self.config_name}] {message}"
        self.log.append(line)
        print(line, flush=True)

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> str:
        command = compose.command(self.config_name, *args, project=self.project)
        done = subprocess.run(
            command, env=self.env, cwd=compose.DOCKER_DIR.parent, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise SmokeFailure(f"`{' '.join(command[-len(args) :])}` exited {done.returncode}: {done.stderr[-800:]}")
        return done.stdout + done.stderr

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).split()

    def inspect(self, container: str, template: str) -> str:
        done = subprocess.run(
            ["docker", "inspect", "--format", template, container], env=self.env, capture_output=True, text=True
        )
        return done.stdout.strip()

    def wait_healthy(self, service: str, timeout: float = 120) -> float:
        """Wait until every container of ``service`` reports healthy; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            states = [self.inspect(c, "{{.State.Health.Status}}") for c in self.containers(service)]
            if states and all(s == "healthy" for s in states):
                return time.monotonic() - started
            if "unhealthy" in states:
                break
            time.sleep(1)
        raise SmokeFailure(f"{service} is not healthy after {time.monotonic() - started:.0f} s: {states}")

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        """Send a request to the stack's published port; return (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait until ``/readyz`` answers 200 through the published port; return the seconds it took."""
        started = time.monotonic()
        last: object = None
        while time.monotonic() - started < timeout:
            try:
                status, last = self.request("GET", "/readyz")
                if status == 200:
                    return time.monotonic() - started
            except (OSError, ValueError) as exc:
                last = exc
            time.sleep(0.5)
        raise SmokeFailure(f"/readyz did not answer 200 within {timeout:.0f} s (last: {last})")

    def psql(self, sql: str) -> str:
        user = "postgres"
        database = self.env.get("POSTGRES_DB", "app")
        return self.compose("exec", "-T", "db", "psql", "-U", user, "-d", database, "-Atc", sql).strip()


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def check(stack: Stack) -> None:
    """Run every step on ``stack``; raise SmokeFailure at the first that fails."""
    timed = time.monotonic()
    stack.compose("build", timeout=1200)
    stack.say(f"built in {time.monotonic() - timed:.1f} s")

    timed = time.monotonic()
    stack.compose("up", "--detach")
    stack.wait_healthy("web")
    healthy = time.monotonic() - timed
    stack.wait_ready()
    stack.say(f"up: web healthy {healthy:.1f} s after `up` began, /readyz 200 after {time.monotonic() - timed:.1f} s")

    email = f"smoke-{secrets.token_hex(4)}@example.com"
    status, user = stack.request("POST", "/users", {"email": email, "name": "Smoke Check"})
    expect(status == 201, f"POST /users answered {status}: {user}")
    status, fetched = stack.request("GET", f"/users/{user['id']}")
    expect(status == 200 and fetched["email"] == email, f"GET /users/{user['id']} answered {status}: {fetched}")
    stack.say(f"created and read user {user['id']}")

    if stack.config_name == "production":
        production_checks(stack)
        observability_checks(stack)
    else:
        development_checks(stack)

    stack.compose("down")
    timed = time.monotonic()
    stack.compose("up", "--detach")
    stack.wait_healthy("web")
    stack.wait_ready()
    status, fetched = stack.request("GET", f"/users/{user['id']}")
    expect(status == 200 and fetched["email"] == email, f"after down and up, the user is gone ({status}: {fetched})")
    stack.say(f"down and up kept the data (ready again in {time.monotonic() - timed:.1f} s)")
    backup_and_restore(stack, user["id"], email)

    container = stack.containers("web")[0]
    timed = time.monotonic()
    stack.compose("stop", "--timeout", "30", "web")
    took = time.monotonic() - timed
    code = stack.inspect(container, "{{.State.ExitCode}}")
    expect(code == "0" and took < 15, f"web stopped with exit code {code} after {took:.1f} s (wanted 0, quickly)")
    stack.say(f"SIGTERM: web exited 0 in {took:.1f} s")


def backup_and_restore(stack: Stack, user_id: int, email: str) -> None:
    """Back the database up to the host, delete the volume, restore into a fresh one: the user is back; a second
    restore over the now filled database is refused."""
    database = stack.env["POSTGRES_DB"]
    owner = stack.env.get("POSTGRES_MIGRATION_USER") or stack.env["POSTGRES_USER"]
    db = StackDatabase(compose.command(stack.config_name, project=stack.project), stack.env, database, ROOT)
    with tempfile.TemporaryDirectory(prefix="smoke-backup-") as directory:
        path = Path(directory) / "backup.dump"
        timed = time.monotonic()
        size = backups.backup(db, path)
        stack.say(f"backed up to the host: {size:,} bytes in {time.monotonic() - timed:.1f} s")
        stack.compose("down", "--volumes")
        timed = time.monotonic()
        backups.restore(db, path, owner)
        restored = time.monotonic() - timed
        stack.compose("up", "--detach")
        stack.wait_healthy("web")
        stack.wait_ready()
        status, fetched = stack.request("GET", f"/users/{user_id}")
        expect(status == 200 and fetched["email"] == email, f"after the restore the user is gone ({status}: {fetched})")
        try:
            backups.restore(db, path, owner)
            refused = ""
        except UserError as exc:
            refused = str(exc)
        expect("a restore goes only into a fresh volume" in refused, f"a restore over data was not refused: {refused}")
    stack.say(
        f"down --volumes, restore into the fresh volume ({restored:.1f} s): the user is back; no restore over data"
    )


def development_checks(stack: Stack) -> None:
    """The development container writes into the bind-mounted checkout as the host user."""
    probe = ".local/smoke-write-check"
    stack.compose("exec", "-T", "web", "sh", "-c", f"mkdir -p .local && touch {probe}")
    path = compose.DOCKER_DIR.parent / probe
    try:
        owner = path.stat().st_uid
    finally:
        path.unlink(missing_ok=True)
    expect(owner == os.getuid(), f"the container wrote {probe} as uid {owner}, not the host user's {os.getuid()}")
    stack.say(f"wrote into the bind mount as the host user (uid {owner})")


def production_checks(stack: Stack) -> None:
    """TLS and the least-privileged role for web's connections; a client cannot choose the logged address."""
    status, _ = stack.request("GET", "/users", headers={"X-Forwarded-For": SPOOFED})
    expect(status == 200, f"GET /users answered {status}")
    logs = stack.compose("logs", "--no-color", "web", "proxy")
    expect(SPOOFED not in logs, f"a client's X-Forwarded-For ({SPOOFED}) reached the logs")
    app_user = stack.env.get("POSTGRES_USER", "app")
    row = stack.psql(
        "SELECT count(*), bool_and(s.ssl), bool_or(r.rolsuper OR r.rolcreatedb OR r.rolcreaterole) "
        "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) JOIN pg_roles r ON r.rolname = a.usename "
        f"WHERE a.usename = '{app_user}'"
    )
    count, ssl, powerful = row.split("|")
    expect(int(count) > 0 and ssl == "t", f"web's connections are not all encrypted (count|ssl: {count}|{ssl})")
    expect(powerful == "f", f"the web role '{app_user}' is a superuser or may create databases or roles")
    created = stack.compose(
        "exec",
        "-T",
        "db",
        "sh",
        "-c",
        f'PGPASSWORD="$APP_ROLE_PASSWORD" psql \'host=localhost sslmode=require user={app_user} '
        f"dbname={stack.env.get('POSTGRES_DB', 'app')}' -Atc 'CREATE TABLE smoke_probe (id int)'",
        check=False,
    )
    expect("permission denied" in created, f"the web role could create a table: {created.strip()}")
    stack.say(f"{count} web connection(s), all TLS; role '{app_user}' has no DDL; X-Forwarded-For not logged")


def observability_checks(stack: Stack) -> None:
    """nginx passes a client's request id to web, both log it in JSON lines, and web serves metrics inside."""
    request_id = f"smoke-{secrets.token_hex(4)}"
    status, _ = stack.request("GET", "/readyz", headers={"X-Request-ID": request_id})
    expect(status == 200, f"GET /readyz answered {status}")
    logs = stack.compose("logs", "--no-color", "--no-log-prefix", "web", "proxy")
    # A line may start with a terminal control sequence compose adds even with --no-color; the JSON follows it.
    lines = [json.loads(line[line.find("{") :]) for line in logs.splitlines() if request_id in line]
    loggers = sorted(line.get("logger", "?") for line in lines)
    expect(loggers == ["gunicorn.access", "nginx.access"], f"request {request_id} was logged by {loggers}")
    scrape = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9464/metrics').read().decode())"
    metrics = stack.compose("exec", "-T", "web", "python", "-c", scrape)
    expect('route="/readyz",status="200"' in metrics, "web's metrics endpoint did not count GET /readyz")
    stack.say(f"request id {request_id} in nginx's and gunicorn's JSON lines; web's metrics count it")


def run(config_name: str) -> bool:
    """Smoke-check one config's stack; return whether it passed. The stack is removed in any case."""
    stack = Stack(config_name)
    started = time.monotonic()
    try:
        check(stack)
        stack.say(f"passed in {time.monotonic() - started:.0f} s")
        return True
    except (SmokeFailure, subprocess.TimeoutExpired, UserError, OSError, ValueError, KeyError) as exc:
        stack.say(f"FAILED: {exc}")
        print(stack.compose("logs", "--no-color", "--tail", "40", check=False), file=sys.stderr)
        return False
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", check=False)
        stack.say("removed (down --volumes)")


def main(argv: list[str]) -> int:
    configs = argv or list(CONFIGS)
    reason = unavailable()
    if reason:
        print(f"Smoke check skipped: {reason}", flush=True)
        return 0
    try:
        for name in configs:
            compose.compose_file(name)
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    results = {name: run(name) for name in configs}
    print("Smoke check: " + ", ".join(f"{n} {'passed' if ok else 'FAILED'}" for n, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
