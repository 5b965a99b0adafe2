"""The metrics endpoint, served by gunicorn's master from the files its workers write.

prometheus_client's multiprocess mode: each worker writes its values to PROMETHEUS_MULTIPROC_DIR and the master
adds them up on each scrape, so the counts are right however many workers there are, and however often they
are replaced. The directory is made for the run (private, unpredictable name) and removed when gunicorn exits.
The endpoint listens on METRICS_BIND, apart from the public port.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
HEADER_BYTES = 8  # a worker's file holds at least its "bytes used" header once the library has sized it


def make_multiprocess_dir(environ: dict[str, str] | os._Environ = os.environ) -> str:
    """Create this run's directory for the workers' metric files and point prometheus_client at it.

    Call it before prometheus_client is imported: the library chooses file-backed values at import.
    """
    path = tempfile.mkdtemp(prefix="app-metrics-")  # 0700, a name nobody can guess
    environ[ENVIRONMENT_VARIABLE] = path
    return path


def split_bind(bind: str) -> tuple[str, int]:
    """Return (host, port) of a validated METRICS_BIND ("HOST:PORT", IPv6 hosts in brackets)."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def sized_files(path: str) -> list[str]:
    """Return the workers' metric files that have their header.

    prometheus_client creates a worker's file empty and sizes it a moment later; a scrape in that moment, or
    after a worker killed in it, would fail whole on the empty file (prometheus/client_python#1199). Such a
    file holds nothing yet, so leaving it out loses nothing.
    """
    sized = []
    for name in glob.glob(os.path.join(path, "*.db")):
        try:
            if os.stat(name).st_size >= HEADER_BYTES:
                sized.append(name)
        except FileNotFoundError:  # a dead worker's gauges, removed since the listing
            continue
    return sized


def registry(path: str):
    """Return a registry whose one collector sums the sized files of ``path``."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    class SizedFilesCollector(MultiProcessCollector):
        def collect(self):
            return self.merge(sized_files(self._path), accumulate=True)

    summed = CollectorRegistry()
    SizedFilesCollector(summed, path=path)
    return summed


def serve(bind: str, path: str):
    """Serve the sum of the workers' metrics on ``bind`` in a thread of this process; return the server."""
    from prometheus_client import start_http_server

    host, port = split_bind(bind)
    server, _thread = start_http_server(port, addr=host, registry=registry(path))
    return server


def worker_exited(pid: int, path: str) -> None:
    """Forget a dead worker's gauges (its counters stay in the sums)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, path)


def remove(path: str) -> None:
    """Remove the run's directory."""
    shutil.rmtree(path, ignore_errors=True)
