"""This machine's ports and processes: a free port, whether one is taken, when a process has exited, SIGTERM
stopping a run as Ctrl-C does."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path


def stop_like_ctrl_c(signum, frame):
    """Raise KeyboardInterrupt: installed for SIGTERM (a CI time-out, ``kill``), it makes a run clean up what it
    started as it does after Ctrl-C."""
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def postgres_data_dir(port: int) -> Path | None:
    """Return the data directory of the PostgreSQL server started with ``-p port``, found by reading the command
    lines every account may read (``/proc/<pid>/cmdline``), or None when no such server is seen."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name != "postgres" or "-D" not in argv[:-1] or "-p" not in argv[:-1]:
            continue
        if argv[argv.index("-p") + 1] == str(port):
            return Path(argv[argv.index("-D") + 1])
    return None


def process_stat(pid: int) -> list[str] | None:
    """Return the fields of ``/proc/<pid>/stat`` after the command name (the state first), or None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start(pid: int) -> str | None:
    """Return process ``pid``'s start time (in clock ticks since boot), which tells a reused pid apart."""
    fields = process_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited (or is a zombie nobody reaps); return whether it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fields = process_stat(pid)
        if fields is None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        elif fields[0] == "Z":
            return True
        time.sleep(0.005)
    return False
