"""Where the project's development cluster lives, and the cluster itself."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from devtools.postgres.cluster import LocalCluster
from devtools.postgres.safety import reachable_by, server_user

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def development_dir(project_root: Path = PROJECT_ROOT) -> Path:
    """Return where the development cluster lives: ``.local/postgres`` in the project when the server user
    can reach it, else a directory under the system's temporary directory named after the project's path."""
    local = project_root / ".local" / "postgres"
    if reachable_by(local, server_user()):
        return local
    digest = hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"{project_root.name}-postgres-{digest}"


def development_cluster(host: str, port: int, superuser: str, major: int | None = None) -> LocalCluster:
    """Return the project's development cluster at the address the development config gives."""
    return LocalCluster(development_dir(), port=port, host=host, superuser=superuser, major=major)
