"""The connection budget: whether a deployment's replicas, workers and pools fit the database server's
max_connections at their peak (a rolling update, or the migration running)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from devtools.deploy.plan import WEB_SIZE
from devtools.errors import DeployError
from project.configuration import Config
from project.settings import config_class

# PostgreSQL's default max_connections; managed servers derive theirs from memory (`SHOW max_connections`).
DEFAULT_MAX_CONNECTIONS = 100
# superuser_reserved_connections (3 by default) plus room for psql, monitoring and backups.
DEFAULT_RESERVED = 10
# A rolling update runs this many extra replicas at its peak (the Deployment's maxSurge; set the ECS service's
# maximumPercent to match).
DEFAULT_SURGE = 1
# `flask db upgrade` holds one connection while it migrates.
MIGRATION_CONNECTIONS = 1


@dataclass(frozen=True)
class Budget:
    """The database connections a deployment can open at its peak, against what the server allows."""

    replicas: int
    workers: int
    workers_note: str
    pool: int
    surge: int
    max_connections: int
    reserved: int

    @property
    def per_replica(self) -> int:
        return self.workers * self.pool

    def peak(self, replicas: int | None = None) -> int:
        """Return the most connections open at once: during a rolling update, or while the migration runs."""
        n = self.replicas if replicas is None else replicas
        return max((n + self.surge) * self.per_replica, n * self.per_replica + MIGRATION_CONNECTIONS)

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved

    def most_replicas(self) -> int:
        """Return the most replicas whose peak fits (0 when not even one does)."""
        n = 0
        while self.peak(n + 1) <= self.available and n < 100_000:
            n += 1
        return n

    def lines(self) -> list[str]:
        """Describe the arithmetic, one line per step."""
        return [
            f"Workers per replica: {self.workers} ({self.workers_note}).",
            f"Connections per replica: {self.workers} workers x {self.pool} (pool_size + max_overflow) "
            f"= {self.per_replica}.",
            f"Peak: {self.replicas} replicas + {self.surge} during a rolling update, or + the migration's "
            f"{MIGRATION_CONNECTIONS}: {self.peak()} connections.",
            f"Available: max_connections {self.max_connections} - {self.reserved} reserved = {self.available}.",
        ]

    def problems(self) -> list[str]:
        """Return a sentence saying what to change when the peak does not fit; empty when it does."""
        if self.peak() <= self.available:
            return []
        most = self.most_replicas()
        fit = f"run at most {most} replicas" if most else "no replica fits"
        return [
            f"{self.replicas} replicas can open {self.peak()} database connections but the server allows "
            f"{self.available} ({self.max_connections} max_connections - {self.reserved} reserved): {fit}, "
            f"lower GUNICORN_WORKERS (now {self.workers}) or pool_size + max_overflow (now {self.pool}, "
            "project/settings.py), raise the server's max_connections, or put a pooler such as PgBouncer in front."
        ]


def auto_workers(cpus: float) -> int:
    """Return gunicorn's worker count for GUNICORN_WORKERS=0 on ``cpus`` CPUs: 2 x CPUs + 1, counting a
    fraction of a CPU as a whole one (an upper bound, which is what a budget needs)."""
    return 2 * math.ceil(cpus) + 1


def parse_cpus(text: str | None) -> float | None:
    """Return ``--cpus`` as a number, None when absent; raise DeployError when it is not a positive number."""
    if text is None or text == "":
        return None
    try:
        cpus = float(text)
    except ValueError:
        cpus = -1.0
    if not 0 < cpus <= 1024 or math.isnan(cpus):
        raise DeployError(f"--cpus must be a number of CPUs from 0.1 to 1024 such as 0.5 or 2, got {text!r}.")
    return cpus


def budget(
    config: Config,
    replicas: int,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    reserved: int = DEFAULT_RESERVED,
    cpus: float | None = None,
    surge: int = DEFAULT_SURGE,
) -> Budget:
    """Work out ``config``'s connection budget for ``replicas`` replicas."""
    if reserved >= max_connections:
        raise DeployError(
            f"--reserved {reserved} leaves no connection of --max-connections {max_connections}; reserve fewer."
        )
    workers = int(config.get("GUNICORN_WORKERS", "0"))
    if workers:
        note = "GUNICORN_WORKERS"
    else:
        given = cpus is not None
        cpus = cpus if given else WEB_SIZE.cpus
        workers = auto_workers(cpus)
        where = "--cpus" if given else "the rendered web size; pass --cpus for another"
        note = f"GUNICORN_WORKERS=0 means 2 x CPUs + 1; {cpus:g} CPU from {where}"
    options = config_class(config.get("FLASK_CONFIG", "production")).SQLALCHEMY_ENGINE_OPTIONS
    pool = int(options.get("pool_size", 5)) + int(options.get("max_overflow", 10))
    return Budget(replicas, workers, note, pool, surge, max_connections, reserved)
