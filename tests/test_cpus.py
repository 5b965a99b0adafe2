"""gunicorn sizes itself from the CPUs the process may use: affinity and the cgroup quota, v1 and v2."""

import os
import subprocess
import sys

import pytest

from project import cpus
from tests.helpers import ROOT


def fake_cgroup(tmp_path, proc_lines, files):
    """Write a fake /proc/self/cgroup and cgroup filesystem; return (root, proc file)."""
    proc = tmp_path / "proc-cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root, proc


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


def test_a_cgroup_v2_quota_limits_the_cpus(tmp_path, eight_cpus):
    root, proc = fake_cgroup(tmp_path, ["0::/app.slice/web"], {"app.slice/web/cpu.max": "150000 100000"})
    assert cpus.available_cpus(root, proc) == 2


def test_cgroup_v2_without_a_quota_leaves_the_affinity(tmp_path, eight_cpus):
    root, proc = fake_cgroup(tmp_path, ["0::/"], {"cpu.max": "max 100000"})
    assert cpus.available_cpus(root, proc) == 8


def test_a_cgroup_v1_quota_limits_the_cpus(tmp_path, eight_cpus):
    root, proc = fake_cgroup(
        tmp_path,
        ["4:memory:/x", "1:cpu,cpuacct:/docker/abc", "0::/"],
        {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000", "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000"},
    )
    assert cpus.available_cpus(root, proc) == 3


def test_cgroup_v1_without_a_quota_leaves_the_affinity(tmp_path, eight_cpus):
    root, proc = fake_cgroup(tmp_path, ["1:cpu:/"], {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    assert cpus.available_cpus(root, proc) == 8


def test_the_affinity_wins_when_it_is_smaller_than_the_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    root, proc = fake_cgroup(tmp_path, ["0::/"], {"cpu.max": "400000 100000"})
    assert cpus.available_cpus(root, proc) == 1


def test_a_tiny_quota_still_gives_one_cpu(tmp_path, eight_cpus):
    root, proc = fake_cgroup(tmp_path, ["0::/"], {"cpu.max": "10000 100000"})
    assert cpus.available_cpus(root, proc) == 1


def test_gunicorn_workers_zero_follows_the_cpus_the_process_may_use():
    """With its affinity cut to one CPU, gunicorn's config asks for 2 x 1 + 1 workers."""
    code = "import os, runpy; os.sched_setaffinity(0, {0}); print(runpy.run_path('gunicorn.conf.py')['workers'])"
    env = {**os.environ, "APPLICATION_CONFIG": "development", "GUNICORN_WORKERS": "0", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.stdout.strip() == "3", result.stderr


def test_without_affinity_or_cgroups_the_cpu_count_is_used(tmp_path, monkeypatch):
    # macOS: no os.sched_getaffinity, no /proc/self/cgroup, no /sys/fs/cgroup.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert cpus.available_cpus(tmp_path / "no-cgroup", tmp_path / "no-proc-cgroup") == 6
