"""I1: a fresh nox venv for the tests session, uv against pip (virtualenv backend)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile

from tests.benchmarks.harness import Measurement, timed
from tests.helpers import ROOT


def install(backend: str) -> None:
    """Make a fresh venv for the tests session with nox's ``backend``, then delete it."""
    envdir = tempfile.mkdtemp(prefix=f"project-bench-nox-{backend}-")
    try:
        subprocess.run(
            ["nox", "-s", "tests", "--install-only", "--force-venv-backend", backend, "--envdir", envdir],
            cwd=ROOT,
            env={**os.environ},
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(envdir, ignore_errors=True)


def bench_install() -> list[Measurement]:
    """A fresh nox venv for the tests session: uv against pip (virtualenv backend)."""
    install("uv")  # warm both caches, so the comparison is of the installers, not the network
    install("virtualenv")
    a = statistics.median(timed(lambda: install("uv")) for _ in range(2))
    b = statistics.median(timed(lambda: install("virtualenv")) for _ in range(2))
    return [Measurement("I1", "nox fresh venv: uv / pip", f"{a:.1f} s", f"{b:.1f} s", a / b, "<= 0.4")]
