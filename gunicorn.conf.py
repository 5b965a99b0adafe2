"""gunicorn settings, read from the same JSON config as everything else (APPLICATION_CONFIG picks it).

``gunicorn -c gunicorn.conf.py wsgi:app``; used by ``inv prod`` and the production image.
"""

import sys

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
# Heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if sys.platform.startswith("linux") else None
proc_name = f"app-{_config.name}"
control_socket_disable = True  # one gunicorn per config is enough; no shared socket in $HOME
