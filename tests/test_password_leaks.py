"""The local cluster's superuser password reaches the cluster and nothing else: not a program another account runs on
another loopback address, nor one on the cluster's port while the cluster is stopped."""

import os
import shutil
import socket
import subprocess

import psycopg2
import pytest

from devtools.databases import connect
from devtools.postgres.cluster import REQUIRE_AUTH, LocalCluster
from devtools.processes import free_port
from devtools.target import resolve, throwaway_config
from project.settings import BaseConfig, connection_params, flask_settings, libpq_environ
from tests.helpers import PasswordCatcher


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


NO_IPV6 = pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
LOOPBACKS = [
    ("127.0.0.2", "127.0.0.2"),
    pytest.param("localhost", "::1", marks=NO_IPV6),  # where most systems resolve localhost first
    pytest.param("::1", "::1", marks=NO_IPV6),
]


@pytest.mark.parametrize(("host", "listener"), LOOPBACKS)
def test_a_config_naming_another_loopback_address_connects_to_the_cluster_itself(postgresql_server, host, listener):
    cluster = postgresql_server.cluster
    config = throwaway_config(cluster, "postgres").replace(POSTGRES_HOST=host)
    with PasswordCatcher(listener, cluster.port) as catcher:
        target = resolve(config, cluster)
        with connect(target.config) as conn:  # what the tasks, alembic and the app's URL start from
            assert conn.server_version
        env = {"PATH": os.environ["PATH"], **libpq_environ(connection_params(target.config))}
        psql = shutil.which("psql") or str(cluster.bindir / "psql")
        done = subprocess.run([psql, "-XAtc", "SELECT 1"], env=env, capture_output=True, text=True, timeout=30)
        assert done.stdout.strip() == "1", done.stderr
    assert catcher.clients == 0 and catcher.received == []


def test_the_passfile_names_only_the_clusters_own_addresses(postgresql_server):
    cluster = postgresql_server.cluster
    lines = cluster.passfile.read_text().splitlines()
    expected = {cluster.host, *([str(cluster.socket_dir)] if cluster.socket_dir else [])}
    assert {line.split(":")[0] for line in lines} == expected
    assert all(line.split(":")[1:4] == [str(cluster.port), "*", cluster.superuser] for line in lines)


@pytest.fixture
def stopped_cluster(tmp_path):
    """A cluster that is not running, with a passfile, on a free port."""
    base = tmp_path / "cluster"
    base.mkdir(mode=0o700)
    cluster = LocalCluster(base, port=free_port())
    cluster.write_passfile("the-superusers-password")
    return cluster


def test_a_program_on_a_stopped_clusters_port_gets_no_password(postgresql_server, stopped_cluster):
    config = throwaway_config(postgresql_server.cluster, "postgres").replace(
        POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(stopped_cluster.port)
    )
    target = resolve(config, stopped_cluster)
    with PasswordCatcher("127.0.0.1", stopped_cluster.port) as catcher:
        for values in (target.config, target.admin()):
            with pytest.raises(psycopg2.OperationalError, match="password"):
                connect(values)
    assert catcher.clients == 2 and catcher.received == []


def test_require_auth_reaches_the_apps_engine_and_psql(database):
    values = database.replace(POSTGRES_REQUIRE_AUTH=REQUIRE_AUTH)
    settings = flask_settings(BaseConfig, values)
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["require_auth"] == REQUIRE_AUTH
    assert libpq_environ(connection_params(values))["PGREQUIREAUTH"] == REQUIRE_AUTH


def test_a_remote_server_asking_for_cleartext_is_refused_when_the_config_requires_scram(database):
    port = free_port()
    values = database.replace(
        POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(port), POSTGRES_PASSWORD="hunter2", POSTGRES_REQUIRE_AUTH=""
    )
    with PasswordCatcher("127.0.0.1", port) as catcher:
        with pytest.raises(psycopg2.OperationalError):
            connect(values)  # without the setting, the password is handed over (the rule's other side)
        with pytest.raises(psycopg2.OperationalError, match="password"):
            connect(values.replace(POSTGRES_REQUIRE_AUTH=REQUIRE_AUTH))
    assert catcher.received == [b"hunter2\x00"]
