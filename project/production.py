"""Production simulation without Docker: gunicorn under the production config against the local cluster."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from project import deploy_checks
from project import operations as ops
from project.configuration import Config, ConfigError
from project.local_postgres import LocalCluster

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Plan:
    config: Config
    command: list[str]
    env: dict[str, str]
    messages: list[str] = field(default_factory=list)


def prepare(config: Config, host: str = "127.0.0.1", port: int = 8000, cluster: LocalCluster | None = None) -> Plan:
    """Point ``config`` at the local cluster, refuse it if unsafe, migrate, and return the gunicorn command."""
    cluster = cluster or ops.local_cluster()
    local = config.replace(POSTGRES_HOST=cluster.host, POSTGRES_PORT=str(cluster.port), GUNICORN_BIND=f"{host}:{port}")
    found = deploy_checks.problems(local, config)
    if found:
        raise ConfigError(f"Refusing to start under the '{config.name}' config: " + " ".join(found))
    messages = [ops.ensure_server(local), str(ops.init_database(local))]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--chdir",
        str(ROOT),
        "wsgi:app",
    ]
    return Plan(local, command, local.environ(), [m for m in messages if m])
