"""Check the running API against its own OpenAPI document with schemathesis, a fuzzer nobody here wrote.

Run by ``nox -s contract`` as ``python -m devtools.contract [SCHEMATHESIS OPTIONS]``: it starts a throwaway
PostgreSQL server, migrates a database there, serves the app on a free local port and runs ``schemathesis run``
against ``/openapi.json`` (every operation, the document's links for stateful sequences). It fails on any 5xx,
any response the document does not describe, or any status it does not list. Everything it starts stops with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence

from werkzeug.serving import make_server

from devtools import migrations
from devtools.databases import admin_cursor, create_database, owner_mark
from devtools.postgres.throwaway import throwaway_cluster
from devtools.target import throwaway_config

DATABASE = "contract"
# Bounded: a few dozen cases per operation and phase keep the run within minutes on two cores; pass
# --max-examples (or any schemathesis option) after `--` to go further.
DEFAULT_OPTIONS = (
    "--checks=all",
    "--max-examples=40",
    "--phases=examples,coverage,fuzzing,stateful",
    "--request-timeout=10",
    "--workers=1",
    "--suppress-health-check=too_slow",
)


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """Serve ``app`` on a free local port in a thread; yield its base URL and stop it on exit."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="contract-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def schemathesis_command(base_url: str, options: Sequence[str]) -> list[str]:
    """Return the schemathesis command line for the document at ``base_url``; ``options`` come last and win."""
    program = shutil.which("schemathesis") or "schemathesis"
    return [program, "run", f"{base_url}/openapi.json", *DEFAULT_OPTIONS, *options]


def run(options: Sequence[str] = ()) -> int:
    """Run schemathesis against the app on a fresh throwaway database; return its exit code."""
    from project import create_app

    with throwaway_cluster(prefix="project-contract-pg-") as cluster:
        config = throwaway_config(cluster, DATABASE)
        with admin_cursor(config) as cur:
            create_database(cur, DATABASE, mark=owner_mark(config.name))
        migrations.upgrade(config)
        app = create_app("testing", overrides=config)
        # Errors are answered as in production (a JSON 500), not raised into the server thread.
        app.config["PROPAGATE_EXCEPTIONS"] = False
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns the report
        with serving(app) as base_url:
            # The fuzzer needs nothing from this process's environment but where to find programs.
            env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
            return subprocess.run(schemathesis_command(base_url, options), env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
