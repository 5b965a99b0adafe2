"""The commands developers type, one module per namespace; ``tasks.py`` at the project root only imports ``ns``.

Every task takes ``--config NAME`` (default: $APPLICATION_CONFIG, else development). The task modules declare
the tasks, parse their arguments and print; the work lives in the rest of the ``devtools`` package, which turns
user mistakes into one sentence and exit code 2.
"""

from __future__ import annotations

from devtools import cli
from devtools.tasks import compose, config, db, deploy, deps, root, scenario

cli.exit_2_on_usage_errors()

ns = root.ns
for namespace in (db, config, scenario, deploy, compose, deps):
    ns.add_collection(namespace.ns)
ns.configure({"run": {"echo": False}})
