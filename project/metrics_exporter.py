"""The metrics endpoint, served by gunicorn's master from the files its workers write.

prometheus_client's multiprocess mode: each worker writes its values to PROMETHEUS_MULTIPROC_DIR and the master
adds them up on each scrape, so the counts are right however many workers there are, and however often they
are replaced. The directory is made for the run (private, unpredictable name) and removed when gunicorn exits.
The endpoint listens on METRICS_BIND, apart from the public port.
"""

from __future__ import annotations

import os
import shutil
import tempfile

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


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


def serve(bind: str, path: str):
    """Serve the sum of the workers' metrics on ``bind`` in a thread of this process; return the server."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    host, port = split_bind(bind)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def worker_exited(pid: int, path: str) -> None:
    """Forget a dead worker's gauges (its counters stay in the sums)."""
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(pid, path)


def remove(path: str) -> None:
    """Remove the run's directory."""
    shutil.rmtree(path, ignore_errors=True)
