"""The project's own name, and what it names outside its directory.

One setting, ``name`` in ``pyproject.toml``'s ``[tool.devtools]`` table, prefixes everything the project names
where another project could meet it: compose projects (``<name>-development``), deployment definitions and log
groups (``<name>-production``), temporary directories (``<name>-tests-pg-…``) and the cache
(``~/.cache/<name>-postgres``). ``inv new`` sets it, with a development port derived from it, so two projects
made from this one run side by side.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from pathlib import Path

from project.configuration import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A name that is a compose project name, a DNS label (Kubernetes), an ECS family and a file name prefix alike.
NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]\Z")
# Development ports come from here: above the ports services usually register, below Linux's ephemeral range
# (32768-60999, where the kernel picks the throwaway servers' ports), and away from the default 15432.
DEVELOPMENT_PORTS = range(20000, 30000)


@functools.cache
def project_name(root: Path = PROJECT_ROOT) -> str:
    """Return the project's name, ``[tool.devtools] name`` in ``root/pyproject.toml``."""
    path = root / "pyproject.toml"
    try:
        with path.open("rb") as file:
            name = tomllib.load(file).get("tool", {}).get("devtools", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); its [tool.devtools] name names the project.") from None
    if not isinstance(name, str) or not NAME.match(name):
        raise ConfigError(
            f"{path}: [tool.devtools] name must be 2 to 32 lowercase letters, digits and dashes, starting with a "
            f'letter (for example "shop"), got {name!r}.'
        )
    return name


def prefix(purpose: str, root: Path = PROJECT_ROOT) -> str:
    """Return the prefix of a temporary directory for ``purpose``: ``<name>-<purpose>-``."""
    return f"{project_name(root)}-{purpose}-"


def derived_port(name: str) -> int:
    """Return the development port that belongs to ``name``: the same on every machine, rarely another's."""
    digest = int(hashlib.sha256(name.encode()).hexdigest(), 16)
    return DEVELOPMENT_PORTS.start + digest % len(DEVELOPMENT_PORTS)
