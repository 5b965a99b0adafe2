"""Who runs a cluster: its postmaster's pid, checked before anything is signalled, and what holds its port."""

from __future__ import annotations

from pathlib import Path

from devtools.processes import postgres_data_dir, process_owner_and_cwd


def postmaster_pid(data_dir: Path, server_uid: int) -> int | None:
    """Return the pid in ``postmaster.pid`` when it is ``data_dir``'s postmaster, else None.

    The file is writable by the server user, so its pid is trusted only when that process runs as the server
    user with the data directory as its working directory, as a postmaster does.
    """
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    seen = process_owner_and_cwd(pid) if pid > 1 else None
    if seen is None or seen != (server_uid, str(data_dir.resolve())):
        return None
    return pid


def port_holder(port: int) -> str:
    """Say what holds ``port``: another project's cluster (named by its directory), another PostgreSQL server (by
    its data directory), or another program."""
    data_dir = postgres_data_dir(port)
    if data_dir is None:
        return "another program"
    if data_dir.parent.parent.name == ".local" and data_dir.parent.name == "postgres":
        return f"another project's cluster at {data_dir.parent.parent.parent} (`inv db.stop` there stops it)"
    return f"another PostgreSQL server, data directory {data_dir}"
