"""gunicorn settings, read from the same JSON config as everything else (APPLICATION_CONFIG picks it).

``gunicorn -c gunicorn.conf.py wsgi:app``; used by ``inv prod`` and the production image.
"""

import sys

from project import logs, metrics_exporter
from project.configuration import ConfigError, load_config
from project.cpus import available_cpus

try:
    _config = load_config()
except ConfigError as exc:
    print(f"Error: {exc}", file=sys.stderr)
    sys.exit(2)

bind = _config.get("GUNICORN_BIND", "127.0.0.1:8000")
# 0 means "size for the CPUs this process may use" (its affinity and its container's CPU quota, not the host's
# count): the usual 2 x CPUs + 1 sync workers.
workers = int(_config.get("GUNICORN_WORKERS", "0")) or available_cpus() * 2 + 1
threads = int(_config.get("GUNICORN_THREADS", "1"))
timeout = int(_config.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(_config.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = _config.get("LOG_LEVEL", "INFO").lower()
# The app's lines and gunicorn's own go through one handler (JSON lines under production). An access line names
# the method, path (never the query string, which may carry a token) and status; the formatter adds the rest.
logconfig_dict = logs.logging_config(
    _config.get("LOG_FORMAT", "text"), _config.get("LOG_LEVEL", "INFO"), logs.secret_values(_config, _config.secrets())
)
access_log_format = "%(m)s %(U)s %(s)s"
# Heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if sys.platform.startswith("linux") else None
proc_name = f"app-{_config.name}"
control_socket_disable = True  # one gunicorn per config is enough; no shared socket in $HOME

# Metrics: the workers write to a directory made for this run, the master serves their sum on METRICS_BIND.
_metrics_bind = _config.get("METRICS_BIND", "")
_metrics_dir = metrics_exporter.make_multiprocess_dir() if _metrics_bind else None


def when_ready(server):
    if _metrics_dir:
        try:
            metrics_exporter.serve(_metrics_bind, _metrics_dir)
        except OSError as exc:
            server.log.error(
                "METRICS_BIND %s cannot be used (%s); choose a free HOST:PORT, or empty for none.",
                _metrics_bind,
                exc.strerror,
            )
            sys.exit(2)
        server.log.info("Serving metrics at http://%s/metrics", _metrics_bind)


def child_exit(server, worker):
    if _metrics_dir:
        metrics_exporter.worker_exited(worker.pid, _metrics_dir)


def on_exit(server):
    if _metrics_dir:
        metrics_exporter.remove(_metrics_dir)
