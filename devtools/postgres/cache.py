"""Initialised data directories kept to copy into a new throwaway cluster instead of running initdb, each with the
work a :class:`Preparation` did in it (migrations applied, for instance).

The cache lives under the user's own cache directory, which no other account can write to; every entry is
checked (owner, type, mode) before it is copied, and is saved through a staging directory and a rename, so a
half-written entry is never found.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.identity import project_name
from devtools.postgres.cluster import PASSFILE, LocalCluster
from devtools.postgres.credentials import passfile_password
from devtools.postgres.safety import check_ancestors, check_private_dir, write_private

INITDB_LAYOUT = 1  # bump when LocalCluster.init changes what a new data directory holds, so old copies go unused
PREPARED_FILE = "prepared"  # in a cache entry: the name of the preparation done in it
KEEP_PREPARED = 3  # cache entries kept per preparation name (a few branches' migrations), least recently used go


@dataclass(frozen=True)
class Preparation:
    """Work done on a new throwaway cluster before it is handed out, kept with its data directory in the cache.

    ``key`` must change whenever what ``run`` makes would change (a migration's content, for instance): the
    cached copy is found by it, together with everything that shapes the initialised cluster. Only the
    :data:`KEEP_PREPARED` most recently used copies per ``name`` are kept.
    """

    name: str
    key: str
    run: Callable[[LocalCluster], object]


def cache_home() -> Path:
    """Return where initialised data directories are cached: under the user's own cache directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / f"{project_name()}-postgres"


class DataDirectoryCache:
    """Initialised data directories under ``root``, one entry per key (see :meth:`entry`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def init(self, cluster: LocalCluster, preparation: Preparation | None = None) -> bool:
        """Create ``cluster``'s data directory from the cache (with ``preparation`` done, when such a copy was
        saved), else with initdb, saving a copy; return whether the preparation came done."""
        if cluster.initialised():
            return False
        check_ancestors(self.root)  # an entry is checked, then copied: nobody else may swap it in between
        cluster.make_base_dir()
        if preparation is not None and self.restore(cluster, self.entry(cluster, preparation)):
            return True
        if not self.restore(cluster, self.entry(cluster)):
            cluster.init()
            self.save(cluster)
        return False

    def entry(self, cluster: LocalCluster, preparation: Preparation | None = None) -> Path:
        """Return the entry for ``cluster``: keyed by everything that shapes what initdb makes, and by the key of
        the preparation done after it, if any."""
        postgres = (cluster.bindir / "postgres").stat()
        key = repr(
            (
                str(cluster.bindir),
                postgres.st_size,
                postgres.st_mtime_ns,
                cluster.version(),
                cluster.superuser,
                cluster.supports_tls() and shutil.which("openssl") is not None,
                INITDB_LAYOUT,
                (preparation.name, preparation.key, cluster.settings) if preparation else None,
            )
        )
        return self.root / hashlib.sha256(key.encode()).hexdigest()[:16]

    def restore(self, cluster: LocalCluster, entry: Path) -> bool:
        """Copy a cached data directory (and its passfile) in from ``entry``; return whether there was one."""
        if not os.path.lexists(entry):
            return False
        check_private_dir(entry, {os.geteuid()})
        try:
            subprocess.run(["cp", "-a", str(entry / "data"), str(cluster.data_dir)], check=True, capture_output=True)
            cluster.write_passfile(passfile_password((entry / PASSFILE).read_text()))  # this cluster's address
        except (subprocess.CalledProcessError, OSError, IndexError):  # pruned by another run while we copied: make ours
            shutil.rmtree(cluster.data_dir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                cluster.passfile.unlink()
            return False
        with contextlib.suppress(OSError):
            os.utime(entry)  # recently used: kept when older ones are pruned
        return True

    def save(self, cluster: LocalCluster, preparation: Preparation | None = None) -> None:
        """Keep a copy of ``cluster``'s data directory (stopped, or freshly initialised) for the next cluster."""
        if os.path.lexists(cluster.data_dir / "postmaster.pid"):
            return  # a running (or crashed) server's: its files change while they are copied, and every copy would
            # come with that server's pid, which makes pg_ctl take the copy for a running server while it lives
        entry = self.entry(cluster, preparation)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_private_dir(self.root, {os.geteuid()})
        if os.path.lexists(entry):
            return
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            subprocess.run(["cp", "-a", str(cluster.data_dir), str(staging / "data")], check=True, capture_output=True)
            write_private(staging / PASSFILE, cluster.passfile.read_text())
            if preparation is not None:
                write_private(staging / PREPARED_FILE, preparation.name)
            staging.rename(entry)
        except OSError:  # another run saved the same entry first
            pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if preparation is not None:
            self.prune(preparation.name)

    def prune(self, name: str) -> None:
        """Delete all but the KEEP_PREPARED most recently used entries prepared by ``name``."""
        entries = []
        for entry in self.root.iterdir():
            with contextlib.suppress(OSError):
                if (entry / PREPARED_FILE).read_text() == name:
                    entries.append((entry.stat().st_mtime, entry))
        for _, entry in sorted(entries, reverse=True)[KEEP_PREPARED:]:
            doomed = Path(tempfile.mkdtemp(prefix=".pruned-", dir=self.root))
            with contextlib.suppress(OSError):
                entry.rename(doomed / "entry")  # gone from its name at once; copies in progress fail and fall back
            shutil.rmtree(doomed, ignore_errors=True)
