"""Production simulation without Docker: gunicorn under the production config against the local cluster."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from devtools import lifecycle
from devtools.cluster import LocalCluster
from devtools.target import Target, local_cluster
from project import deploy_checks
from project.configuration import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Plan:
    target: Target
    command: list[str]
    env: dict[str, str]
    messages: list[str] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.target.config


def prepare(config: Config, host: str = "127.0.0.1", port: int = 8000, cluster: LocalCluster | None = None) -> Plan:
    """Point ``config`` at the local cluster, refuse it if unsafe, migrate, and return the gunicorn command."""
    cluster = cluster or local_cluster()
    local = config.replace(POSTGRES_HOST=cluster.host, POSTGRES_PORT=str(cluster.port), GUNICORN_BIND=f"{host}:{port}")
    found = deploy_checks.problems(local, config)
    if found:
        raise ConfigError(f"Refusing to start under the '{config.name}' config: " + " ".join(found))
    target = Target(local, cluster)
    messages = [target.ensure_running(), str(lifecycle.init_database(target))]
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
    return Plan(target, command, local.environ(), [m for m in messages if m])
