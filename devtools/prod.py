"""Production simulation without Docker: gunicorn under the production config against the local cluster."""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from devtools import lifecycle
from devtools.postgres import wheels
from devtools.postgres.cluster import LocalCluster
from devtools.target import Target, local_cluster
from project import deploy_checks
from project.configuration import Config, ConfigError

ROOT = Path(__file__).resolve().parent.parent
# The owner's password and the superuser's passfile stay with the task; gunicorn connects as the app role.
GUNICORN_NEVER_SEES = ("POSTGRES_MIGRATION_PASSWORD", "POSTGRES_PASSFILE")


@dataclass
class Plan:
    target: Target
    command: list[str]
    env: dict[str, str]
    messages: list[str] = field(default_factory=list)

    @property
    def config(self) -> Config:
        return self.target.config


def prepare(
    config: Config, host: str = "127.0.0.1", port: int = 8000, cluster: LocalCluster | None = None, metrics_port=9464
) -> Plan:
    """Point ``config`` at the local cluster, refuse it if unsafe, migrate, and return the gunicorn command.

    As in production, the migrations run as the role that owns the tables and gunicorn connects as the app's
    role, which may only read and write rows; both over TLS. The owner's password is generated for the run
    unless POSTGRES_MIGRATION_PASSWORD is set, and gunicorn never sees it. The metrics endpoint, when the config
    has one, listens on loopback beside the app.
    """
    cluster = cluster or local_cluster()
    # Nothing sits in front of gunicorn here, so no X-Forwarded-* header is trusted: a client must not choose the
    # address that is logged (production's PROXY_FIX_X_FOR counts the load balancer in front of it).
    local = config.replace(
        POSTGRES_HOST=cluster.host, POSTGRES_PORT=str(cluster.port), GUNICORN_BIND=f"{host}:{port}", PROXY_FIX_X_FOR="0"
    )
    if local.get("METRICS_BIND"):
        local = local.replace(METRICS_BIND=f"127.0.0.1:{metrics_port}")
    if not local.get("POSTGRES_MIGRATION_PASSWORD"):
        local = local.replace(POSTGRES_MIGRATION_PASSWORD=secrets.token_urlsafe(32))
    found = deploy_checks.problems(local, config)
    if found:
        raise ConfigError(f"Refusing to start under the '{config.name}' config: " + " ".join(found))
    if not cluster.supports_tls():  # the checks above hold the config to an encrypting POSTGRES_SSLMODE
        raise ConfigError(
            f"The '{config.name}' config connects over TLS, and these PostgreSQL binaries ({cluster.bindir}) were "
            f"built without it: {wheels.tls_advice()}."
        )
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
    env = {k: v for k, v in local.environ().items() if k not in GUNICORN_NEVER_SEES}
    return Plan(target, command, env, [m for m in messages if m])
