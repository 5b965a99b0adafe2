"""This machine's ports and processes: a free port, whether one is taken, when a process has exited, SIGTERM
stopping a run as Ctrl-C does.

Processes are read from ``/proc`` where there is one (Linux), else from ``ps`` and ``lsof`` (macOS).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

HAS_PROC = Path("/proc/self/stat").is_file()


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


def ps(pid: int, field: str) -> str | None:
    """Return one ``ps -o`` field of process ``pid`` (``ps -ww``: never cut), or None when it is gone."""
    with contextlib.suppress(OSError):
        done = subprocess.run(["ps", "-ww", "-o", f"{field}=", "-p", str(pid)], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return None


def process_start(pid: int) -> str | None:
    """Return process ``pid``'s start time, which tells a reused pid apart (clock ticks since boot from /proc,
    else the date ``ps`` gives)."""
    if not HAS_PROC:
        return ps(pid, "lstart")
    fields = process_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_state(pid: int) -> str | None:
    """Return process ``pid``'s state letter (R, S, Z, ...), or None when it is gone."""
    if not HAS_PROC:
        state = ps(pid, "stat")
        return state[0] if state else None
    fields = process_stat(pid)
    return fields[0] if fields else None


def process_owner_and_cwd(pid: int) -> tuple[int, str] | None:
    """Return the uid process ``pid`` runs as and its working directory, or None when they cannot be read."""
    if HAS_PROC:
        try:
            return os.stat(f"/proc/{pid}").st_uid, os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return None
    uid = ps(pid, "uid")
    with contextlib.suppress(OSError):
        done = subprocess.run(["lsof", "-a", "-p", str(pid), "-d", "cwd", "-Fn"], capture_output=True, text=True)
        cwd = [line[1:] for line in done.stdout.splitlines() if line.startswith("n")]
        if uid and uid.isdigit() and cwd:
            return int(uid), cwd[0]
    return None


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait until process ``pid`` has exited (or is a zombie nobody reaps); return whether it did in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = process_state(pid)
        if state is None:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        elif state == "Z":
            return True
        time.sleep(0.005 if HAS_PROC else 0.05)
    return False
