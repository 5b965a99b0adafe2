"""Run work in a detached background process: forked twice, so it is nobody's child to wait for, in its own
session with its standard streams on /dev/null, so it holds no caller's pipe or terminal open.

Everything here past ``os.fork()`` runs in the forked children, where a mutant cannot be watched (one that sends
the test process itself down the child's path ends it with status 0, which mutation testing reads as a pass), so
``[tool.mutmut]`` in pyproject.toml leaves this module out.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def run_detached(work: Callable[[int], None]) -> str:
    """Run ``work(report_fd)`` in a detached grandchild; return what it wrote to ``report_fd`` before closing it."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            if os.fork() == 0:
                os.setsid()
                detach_stdio()
                work(write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)  # reaps the middle process, which exits at once
    with os.fdopen(read_end) as said:
        return said.read()


def detach_stdio() -> None:
    """Point this process's standard streams at /dev/null."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
