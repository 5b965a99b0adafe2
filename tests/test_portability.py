"""The macOS paths of the Linux-only calls, run here by turning off what Linux has (/proc, runuser, /dev/shm)."""

import os
import shutil
import subprocess
import tempfile

import pytest

from devtools import processes
from devtools.errors import ClusterError
from devtools.postgres import throwaway
from devtools.postgres.cluster import LocalCluster

needs_ps_and_lsof = pytest.mark.skipif(
    not (shutil.which("ps") and shutil.which("lsof")), reason="the path without /proc reads ps and lsof"
)


@pytest.fixture
def without_proc(monkeypatch):
    """Read processes as on macOS: through ps and lsof, not /proc."""
    monkeypatch.setattr(processes, "HAS_PROC", False)


@needs_ps_and_lsof
def test_without_proc_a_process_is_read_through_ps_and_lsof(without_proc, tmp_path):
    child = subprocess.Popen(["sleep", "30"], cwd=tmp_path)
    try:
        started = processes.process_start(child.pid)
        assert started and started == processes.process_start(child.pid)  # stable: it tells a reused pid apart
        assert processes.process_state(child.pid) in ("S", "R")
        assert processes.process_owner_and_cwd(child.pid) == (os.geteuid(), str(tmp_path.resolve()))
        assert processes.process_start(os.getpid()) != started
    finally:
        child.kill()
    assert processes.wait_for_exit(child.pid, timeout=10)  # a zombie nobody reaped has exited too
    child.wait()
    assert processes.process_state(child.pid) is None and processes.process_owner_and_cwd(child.pid) is None


@needs_ps_and_lsof
def test_without_proc_a_throwaway_server_is_found_signalled_and_reaped(without_proc):
    with throwaway.throwaway_cluster(prefix="project-noproc-pg-") as cluster:
        pid = cluster.postmaster_pid()
        assert pid is not None and processes.process_state(pid) is not None
    assert processes.wait_for_exit(pid, timeout=10) and not cluster.base_dir.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to the server's OS user")
def test_root_without_runuser_is_refused_with_what_to_do(tmp_path, monkeypatch):
    cluster = LocalCluster(tmp_path / "pg", port=0)  # works out its binaries with runuser still on PATH
    cluster.bindir  # noqa: B018
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *args: None if name == "runuser" else real_which(name, *args))
    with pytest.raises(ClusterError, match="without runuser .* run them as your own user"):
        cluster.run_program("pg_ctl", "--version")


def test_without_dev_shm_throwaway_servers_go_to_the_temporary_directory(tmp_path):
    assert throwaway.throwaway_root(shm=str(tmp_path / "no-shm")) == tempfile.gettempdir()
    assert throwaway.throwaway_root(min_free=0, shm=str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize(("uid", "systemd", "shm"), [(999, True, True), (1000, True, False), (1000, False, True)])
def test_a_regular_accounts_servers_leave_dev_shm_where_systemd_would_empty_it(tmp_path, uid, systemd, shm):
    """systemd-logind's RemoveIPC deletes a regular account's /dev/shm files when its last session ends."""
    (tmp_path / "shm").mkdir()
    where = str(tmp_path / ("systemd" if systemd else "no-systemd"))
    os.makedirs(tmp_path / "systemd")
    chosen = throwaway.throwaway_root(min_free=0, shm=str(tmp_path / "shm"), systemd=where, uid=uid)
    assert chosen == (str(tmp_path / "shm") if shm else tempfile.gettempdir())
