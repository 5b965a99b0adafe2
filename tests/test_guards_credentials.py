"""A cluster's credentials and its postmaster check, rule by rule: the passfile's lines and escaping, a new password
that works, the certificate openssl really makes, which pid in postmaster.pid is believed, and what holds a port."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from devtools.postgres import credentials, postmaster
from devtools.processes import free_port
from tests.helpers import PasswordCatcher


def test_a_passfile_has_one_line_per_host_for_exactly_that_port_and_user(tmp_path):
    path = tmp_path / "pgpass"
    credentials.write_passfile(path, ["127.0.0.1", "/run/pg"], 15433, "postgres", "secret")
    assert path.read_text() == "127.0.0.1:15433:*:postgres:secret\n/run/pg:15433:*:postgres:secret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_passfile_escapes_colons_and_backslashes_in_every_field(tmp_path):
    path = tmp_path / "pgpass"
    credentials.write_passfile(path, ["/odd:dir\\x"], 1, "us:er", "p:a\\ss")
    assert path.read_text() == "/odd\\:dir\\\\x:1:*:us\\:er:p\\:a\\\\ss\n"
    assert credentials.passfile_password(path.read_text()) == "p:a\\ss"


def test_a_passfile_is_replaced_whole_and_leaves_no_staging_file(tmp_path):
    path = tmp_path / "pgpass"
    path.write_text("old:1:*:old:old\nsecond:1:*:old:old\n")
    credentials.write_passfile(path, ["h"], 2, "u", "new")
    assert path.read_text() == "h:2:*:u:new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pgpass"]


@pytest.mark.parametrize(
    ("field", "escaped"), [("plain", "plain"), ("a:b", "a\\:b"), ("a\\b", "a\\\\b"), ("\\:", "\\\\\\:"), ("", "")]
)
def test_a_passfile_field_escapes_backslash_first_then_colon(field, escaped):
    assert credentials.passfield(field) == escaped


@pytest.mark.parametrize("password", ["plain", "a:b", "a\\b", "\\:", "x:y:z", "ends\\"])
def test_the_password_read_back_is_the_one_written_from_the_first_line(password):
    text = f"h:1:*:u:{credentials.passfield(password)}\nother:2:*:v:not-this\n"
    assert credentials.passfile_password(text) == password


def test_an_unescaped_colon_in_the_password_field_is_part_of_the_password_as_libpq_reads_it():
    assert credentials.passfile_password("h:1:*:u:a:b:c\n") == "a:b:c"


def test_a_new_password_is_never_sent_to_a_server_asking_for_it_in_cleartext():
    port = free_port()
    with PasswordCatcher("127.0.0.1", port) as catcher:
        params = {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres", "password": "old"}
        with pytest.raises(psycopg2.OperationalError, match="password"):
            credentials.new_password(params, "postgres")
    assert catcher.clients == 1 and catcher.received == []


def test_scram_is_what_the_project_requires():
    assert credentials.REQUIRE_AUTH == "scram-sha-256"


def test_a_new_password_replaces_the_old_one_and_is_strong(postgresql_server):
    cluster = postgresql_server.cluster
    params = {"host": cluster.host, "port": cluster.port, "user": cluster.superuser, "dbname": "postgres"}
    params["password"] = cluster.password()
    with psycopg2.connect(**params) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("DROP ROLE IF EXISTS guard_rotated")
        cur.execute("CREATE ROLE guard_rotated LOGIN PASSWORD 'first-password'")
    try:
        password = credentials.new_password(params, "guard_rotated")
        assert len(password) == 43  # 32 random bytes, in URL-safe base64
        login = {**params, "user": "guard_rotated", "passfile": os.devnull}
        with psycopg2.connect(**{**login, "password": password}) as conn:
            assert conn.server_version
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(**{**login, "password": "first-password"})
        assert credentials.new_password(params, "guard_rotated") != password
    finally:
        with psycopg2.connect(**params) as conn, conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("DROP ROLE guard_rotated")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not on PATH")
def test_the_certificate_is_a_ten_year_p256_one_for_localhost_with_a_private_key(tmp_path):
    ran = []

    def execute(program, argv):
        ran.append(program)
        subprocess.run(argv, check=True, capture_output=True)

    credentials.make_certificate(tmp_path, execute)
    assert ran == ["openssl", "chmod"]
    assert stat.S_IMODE((tmp_path / "server.key").stat().st_mode) == 0o600
    text = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "server.crt"), "-noout", "-text", "-dates"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Subject: CN = localhost" in text and "Issuer: CN = localhost" in text  # self-signed
    assert "DNS:localhost, IP Address:127.0.0.1" in text
    assert "prime256v1" in text or "P-256" in text
    before = next(line for line in text.splitlines() if line.startswith("notBefore="))
    after = next(line for line in text.splitlines() if line.startswith("notAfter="))
    assert int(after.rsplit(" ", 2)[-2]) - int(before.rsplit(" ", 2)[-2]) in (9, 10)  # 3650 days
    key = subprocess.run(
        ["openssl", "pkey", "-in", str(tmp_path / "server.key"), "-noout", "-text"], capture_output=True, text=True
    )
    assert key.returncode == 0 and "ENCRYPTED" not in (tmp_path / "server.key").read_text()  # no passphrase


# -- postmaster.pid --------------------------------------------------------------------------------


@pytest.fixture
def sleeper(tmp_path):
    """A process of this user whose working directory is ``tmp_path / "data"``, as a postmaster's is."""
    data = tmp_path / "data"
    data.mkdir()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=data) as process:
        try:
            yield data, process.pid
        finally:
            process.kill()


def write_pid(data: Path, text: str) -> None:
    (data / "postmaster.pid").write_text(text)


def test_the_pid_of_the_data_directorys_own_server_process_is_believed(sleeper):
    data, pid = sleeper
    write_pid(data, f"{pid}\n{data}\n1700000000\n5432\n")
    assert postmaster.postmaster_pid(data, os.getuid()) == pid


def test_the_data_directory_is_compared_resolved(sleeper, tmp_path):
    data, pid = sleeper
    write_pid(data, f"{pid}\n")
    link = tmp_path / "link"
    link.symlink_to(data)
    assert postmaster.postmaster_pid(link, os.getuid()) == pid


def test_a_process_of_another_user_is_not_believed(sleeper):
    data, pid = sleeper
    write_pid(data, f"{pid}\n")
    assert postmaster.postmaster_pid(data, os.getuid() + 1) is None


def test_a_process_elsewhere_is_not_believed(sleeper, tmp_path):
    data, pid = sleeper
    other = tmp_path / "other"
    other.mkdir()
    write_pid(other, f"{pid}\n")
    assert postmaster.postmaster_pid(other, os.getuid()) is None


@pytest.mark.parametrize("text", ["", "\n", "not a pid\n", "12x\n", "999999999\n", "-5\n"])
def test_a_pid_file_without_a_live_pid_is_not_believed(tmp_path, text):
    write_pid(tmp_path, text)
    assert postmaster.postmaster_pid(tmp_path, os.getuid()) is None


def test_no_pid_file_means_no_postmaster(tmp_path):
    assert postmaster.postmaster_pid(tmp_path, os.getuid()) is None


@pytest.mark.parametrize(
    ("data_dir", "said"),
    [
        (None, "another program"),
        (
            Path("/home/ann/shop/.local/postgres/data"),
            "another project's cluster at /home/ann/shop (`inv db.stop` there stops it)",
        ),
        (
            Path("/home/ann/shop/.local/other/data"),
            "another PostgreSQL server, data directory /home/ann/shop/.local/other/data",
        ),
        (
            Path("/home/ann/shop/local/postgres/data"),
            "another PostgreSQL server, data directory /home/ann/shop/local/postgres/data",
        ),
        (Path("/var/lib/postgresql/15/main"), "another PostgreSQL server, data directory /var/lib/postgresql/15/main"),
    ],
)
def test_what_holds_a_port_is_named(monkeypatch, data_dir, said):
    asked = []
    monkeypatch.setattr(postmaster, "postgres_data_dir", lambda port: asked.append(port) or data_dir)
    assert postmaster.port_holder(15999) == said
    assert asked == [15999]


@pytest.mark.parametrize(("pid", "believed"), [(0, False), (1, False), (2, True), (4321, True)])
def test_pid_one_or_lower_is_never_believed_whatever_the_process_table_says(tmp_path, monkeypatch, pid, believed):
    """Pid 1 is a container's init (and 0 or less signals groups): never taken for the postmaster, even when the
    process table matches."""
    asked = []

    def owner_and_cwd(found):
        asked.append(found)
        return os.getuid(), str(tmp_path.resolve())

    monkeypatch.setattr(postmaster, "process_owner_and_cwd", owner_and_cwd)
    write_pid(tmp_path, f"{pid}\n")
    assert postmaster.postmaster_pid(tmp_path, os.getuid()) == (pid if believed else None)
    assert asked == ([pid] if believed else [])
