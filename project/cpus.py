"""How many CPUs this process may really use: its affinity and its cgroup's CPU quota, not the host's count.

Standard library only: gunicorn's config sizes its workers with it (``GUNICORN_WORKERS=0``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """Return the CPUs this process can use: the fewest of its affinity and its cgroup quota (v1 or v2)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """Return the CPU quota of this process's cgroup in CPUs, or None when it has none."""
    for directory in _cgroup_dirs(cgroup_root, proc_cgroup):
        v2 = _read(directory / "cpu.max")
        if v2:
            quota, _, period = v2.partition(" ")
            if quota != "max" and quota.isdigit() and period.strip().isdigit() and int(period) > 0:
                return int(quota) / int(period)
            return None
        v1_quota, v1_period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
        if v1_quota and v1_period:
            if v1_quota.lstrip("-").isdigit() and int(v1_quota) > 0 and v1_period.isdigit() and int(v1_period) > 0:
                return int(v1_quota) / int(v1_period)
            return None
    return None


def _cgroup_dirs(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """Return the directories that may hold this process's CPU controller files, most specific first."""
    dirs = []
    for line in (_read(proc_cgroup) or "").splitlines():
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        relative = path.lstrip("/")
        if controllers == "":  # cgroup v2
            dirs.append(cgroup_root / relative)
        elif "cpu" in controllers.split(","):  # cgroup v1
            for name in (controllers, "cpu", "cpu,cpuacct"):
                dirs.append(cgroup_root / name / relative)
                dirs.append(cgroup_root / name)
    return [*dirs, cgroup_root, cgroup_root / "cpu"]


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
