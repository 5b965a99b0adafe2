"""Where a command's database lives, worked out once: the config, the local cluster when it points there, and
the settings to administer it with.

A task calls :func:`resolve` once and hands the :class:`Target` to everything it runs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from devtools.databases import PROTECTED_CONFIGS
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.development import development_cluster
from project.configuration import Config, ConfigError, load_config

PINNED = ("POSTGRES_HOST", "POSTGRES_PASSFILE", "POSTGRES_REQUIRE_AUTH")  # taken from the cluster when it is the target


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` names this machine's loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_cluster() -> LocalCluster:
    """Return the project's local cluster, at the address config/development.json gives.

    The file alone decides it: a POSTGRES_PORT in the shell points the app at another server, it does not
    move the cluster (so tests that point the tasks at their own server never touch it).
    """
    dev = load_config("development", environ={}, require_secrets=False)
    major = int(dev["POSTGRES_MAJOR_VERSION"]) if dev.get("POSTGRES_MAJOR_VERSION") else None
    return development_cluster(dev["POSTGRES_HOST"], int(dev["POSTGRES_PORT"]), dev["POSTGRES_USER"], major)


def cluster_address(cluster: LocalCluster) -> str:
    """Say where ``cluster`` listens and keeps its data."""
    return f"{cluster.host}:{cluster.port} ({cluster.base_dir})"


def start_local(cluster: LocalCluster) -> str | None:
    """Create ``cluster`` on first use and start it; return a sentence saying so, or None when it already ran."""
    created = cluster.init()
    if not cluster.start():
        return None
    what = "Created and started" if created else "Started"
    return f"{what} the local PostgreSQL cluster on {cluster_address(cluster)}."


@dataclass(frozen=True)
class Target:
    """A config and, when its database lives on the local cluster, that cluster."""

    config: Config
    cluster: LocalCluster | None = None

    @property
    def database(self) -> str:
        return self.config["POSTGRES_DB"]

    def admin(self) -> dict[str, str]:
        """Return the settings to connect as for creating and dropping databases.

        On the local cluster that is its superuser (the config's user may not exist yet, as with production's
        `app` role under `inv prod`); on any other server, the config's own user.
        """
        values = dict(self.config)
        if self.cluster is not None:
            values.update(self.cluster.connection(), POSTGRES_DB=self.database)
        return values

    def ensure_running(self) -> str | None:
        """Start the local cluster when the config points at it; return a sentence when something was done."""
        return None if self.cluster is None else start_local(self.cluster)

    def describe(self) -> str:
        """Name the database, its server, its config and any shell overrides, as a confirmation should."""
        config = self.config
        overrides = [e.name for e in config.entries if e.source == "environment"]
        shell = f"; shell overrides: {', '.join(overrides)}" if overrides else ""
        server = f"{config['POSTGRES_HOST']}:{config['POSTGRES_PORT']}"
        return f"'{self.database}' on {server} (config '{config.name}'{shell})"

    def with_database(self, name: str) -> Target:
        """Return this target pointed at database ``name`` on the same server."""
        return Target(self.config.replace(POSTGRES_DB=name), self.cluster)


def resolve(config: Config, cluster: LocalCluster | None = None) -> Target:
    """Return the target of ``config``: its settings, plus the local cluster when it points there."""
    if int(config["POSTGRES_PORT"]) == 0:
        raise ConfigError(
            f"{config.display_path()}: POSTGRES_PORT is 0, meaning a throwaway server per test run; "
            "database tasks need a config with a real server (development, production, ...)."
        )
    cluster = cluster or local_cluster()
    if not (is_loopback(config["POSTGRES_HOST"]) and int(config["POSTGRES_PORT"]) == cluster.port):
        return Target(config, None)
    # The superuser's password reaches libpq through the cluster's passfile, never through the config; the
    # connection goes to the cluster's own address (not another loopback one, where another account may listen)
    # and accepts nothing but SCRAM, which never hands the password over.
    pinned = {k: v for k, v in cluster.connection().items() if k in PINNED}
    return Target(config.replace(**pinned), cluster)


def throwaway_config(cluster: LocalCluster, dbname: str) -> Config:
    """Return config/testing.json, read without the shell's environment, pointed at ``dbname`` on ``cluster``
    as its superuser (who also runs the migrations there)."""
    connection = cluster.connection()
    return load_config("testing", environ={}).replace(
        **connection, POSTGRES_MIGRATION_USER=connection["POSTGRES_USER"], POSTGRES_DB=dbname
    )


def refuse_production(config: Config) -> None:
    """Raise ConfigError for a config whose database holds production data."""
    if config.name in PROTECTED_CONFIGS or config["FLASK_CONFIG"] == "production":
        raise ConfigError(f"Refusing to reset the database of the '{config.name}' config: it is production data.")
