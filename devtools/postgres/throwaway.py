"""Throwaway clusters: started on a free port in a new temporary directory for a test run or a check, deleted by
whoever started them, and reaped when that process died without deleting them."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from devtools import identity
from devtools.errors import ClusterError
from devtools.postgres.cache import DataDirectoryCache, Preparation, cache_home
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.safety import check_private_dir, server_user, write_private
from devtools.processes import free_port, process_start

# Settings that make a disposable server fast; durability does not matter for it.
# mmap keeps dynamic shared memory inside the data directory, so a throwaway cluster leaves nothing elsewhere.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "dynamic_shared_memory_type=mmap")
OWNER_FILE = "owner"
# login.defs' SYS_UID_MAX: systemd-logind leaves the shared memory of accounts up to it alone.
SYSTEM_UID_MAX = 999
# sun_path's size, its terminating NUL included: 108 bytes on Linux, 104 on macOS and the BSDs.
SOCKET_PATH_MAX = 108 if sys.platform.startswith("linux") else 104


class ThrowawayCluster(LocalCluster):
    """A cluster in a new temporary directory, deleted by whoever started it; ``prepared`` tells whether its data
    directory came from the cache with the preparation already done."""

    prepared = False


def throwaway_root(
    min_free: int = 1 << 30, shm: str = "/dev/shm", systemd: str = "/run/systemd/system", uid: int | None = None
) -> str:
    """Return where throwaway clusters go: memory-backed /dev/shm when it has room (initdb there is several times
    faster than on disk, and a throwaway cluster needs no durability), else the system's temporary directory (macOS
    has no /dev/shm).

    Not /dev/shm where systemd runs and the server's account (``uid``, by default the one that runs the server) is a
    regular one: systemd-logind's RemoveIPC, on by default, deletes such an account's files there when its last
    session ends, a live server's data directory with them. System accounts (the postgres user under root) are
    spared."""
    if uid is None:
        try:
            server = server_user()
        except ClusterError:  # root without a postgres user: no server will start, and its start says why
            server = None
        uid = server.pw_uid if server else os.geteuid()
    if uid > SYSTEM_UID_MAX and os.path.isdir(systemd):
        return tempfile.gettempdir()
    with contextlib.suppress(OSError):
        stats = os.statvfs(shm)
        if os.access(shm, os.W_OK | os.X_OK) and stats.f_bavail * stats.f_frsize >= min_free:
            return shm
    return tempfile.gettempdir()


def start_throwaway(
    superuser: str = "postgres",
    prefix: str | None = None,
    root: str | None = None,
    settings=FAST_SETTINGS,
    major: int | None = None,
    preparation: Preparation | None = None,
) -> ThrowawayCluster:
    """Start a cluster on a free port in a new temporary directory; the caller destroys it.

    ``root`` defaults to :func:`throwaway_root`; ``settings`` to the fast, non-durable ones. The directory
    records which process owns it, so :func:`reap_throwaways` can tell a dead run's server from a live one.

    With a ``preparation``, the cluster comes from the cache with it already done when a run with the same key
    did it before; otherwise it is done now and the stopped data directory is cached for the next run.
    """
    base_dir = Path(tempfile.mkdtemp(prefix=prefix or identity.prefix("pg"), dir=root or throwaway_root()))
    write_private(base_dir / OWNER_FILE, f"{os.getpid()} {process_start(os.getpid())}\n")
    # Its own 0700 directory holds the Unix socket: only this account (and the server's) can reach it.
    socket_dir = base_dir if len(f"{base_dir}/.s.PGSQL.65535") < SOCKET_PATH_MAX else None
    cluster = ThrowawayCluster(
        base_dir, port=free_port(), superuser=superuser, settings=settings, major=major, socket_dir=socket_dir
    )
    cache = DataDirectoryCache(cache_home())
    try:
        cluster.prepared = cache.init(cluster, preparation)
        cluster.start()
        if preparation is not None and not cluster.prepared:
            preparation.run(cluster)
            cluster.stop()  # a clean shutdown, so the copy needs no recovery
            cache.save(cluster, preparation)
            cluster.start()
        cluster.change_password()  # not the one the cached copy, and every other server made from it, came with
    except BaseException:
        cluster.destroy()
        raise
    return cluster


def reap_throwaways(prefix: str, root: str | None = None) -> list[Path]:
    """Stop and delete the throwaway clusters under ``root`` whose owning process has died; return them.

    Only directories this user (or the server user) owns are looked at, and a live run's clusters are left alone.
    """
    reaped = []
    for base_dir in sorted(Path(root or throwaway_root()).glob(f"{prefix}*")):
        cluster = LocalCluster(base_dir, port=0)
        try:
            check_private_dir(base_dir, {os.geteuid(), cluster.server_uid})
            pid, started = (base_dir / OWNER_FILE).read_text().split()
        except (ClusterError, OSError, ValueError):
            continue
        if process_start(int(pid)) == started:
            continue  # its run is still going
        cluster.destroy()
        reaped.append(base_dir)
    return reaped


@contextlib.contextmanager
def throwaway_cluster(superuser: str = "postgres", prefix: str | None = None, **options) -> Iterator[LocalCluster]:
    """Run a throwaway cluster (see :func:`start_throwaway`); delete it on exit."""
    cluster = start_throwaway(superuser, prefix, **options)
    try:
        yield cluster
    finally:
        cluster.destroy()
