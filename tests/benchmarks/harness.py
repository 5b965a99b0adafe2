"""The benchmarks' harness: interleaved timing, ratios with their spread, a migrated throwaway server, the table.

Each benchmark measures the project's way and a baseline in the same run, interleaved (A, B, A, B, ...), and
returns rows that hold their ratio and its goal; nothing passes or fails.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.server import libpq_passfile


@dataclass
class Measurement:
    """One row of the table: the project's figure, the baseline's, their ratio and its goal."""

    id: str
    name: str
    ours: str
    baseline: str
    ratio: float
    goal: str
    note: str = ""
    spread: str = ""

    def met(self) -> bool:
        """Tell whether the ratio meets the goal ("<= 0.4" or ">= 0.45")."""
        op, _, value = self.goal.partition(" ")
        return self.ratio <= float(value) if op == "<=" else self.ratio >= float(value)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(ours: Callable[[], object], baseline: Callable[[], object], rounds: int) -> tuple[list, list]:
    """Time ``ours`` and ``baseline`` alternately, ``rounds`` times each, so drifts in the machine's speed hit both."""
    a, b = [], []
    for _ in range(rounds):
        a.append(timed(ours))
        b.append(timed(baseline))
    return a, b


def ratio_spread(a: list[float], b: list[float]) -> str:
    """Return the range of the per-round ratios, which says how much to trust the median's."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True))
    return f"{ratios[0]:.3f}-{ratios[-1]:.3f}"


@contextlib.contextmanager
def server_with_database(dbname: str = "bench", durable: bool = False):
    """A throwaway cluster with ``dbname`` migrated; yields (cluster, config).

    ``durable`` puts it on disk with PostgreSQL's stock settings, like the development cluster, instead of the
    test suite's memory-backed, fsync-off one.
    """
    from devtools import lifecycle
    from devtools.postgres.throwaway import throwaway_cluster
    from devtools.target import resolve, throwaway_config

    options = {"root": tempfile.gettempdir(), "settings": ()} if durable else {}
    with throwaway_cluster(prefix="project-bench-pg-", **options) as cluster:
        config = throwaway_config(cluster, dbname)
        lifecycle.init_database(resolve(config))
        with libpq_passfile(cluster):
            yield cluster, config


@contextlib.contextmanager
def time_spent_in(module, names: tuple[str, ...], spent: dict[str, float] | None = None):
    """Add up the time spent in ``module``'s functions ``names`` while the block runs; yield the sums."""
    spent = {} if spent is None else spent
    originals = {name: getattr(module, name) for name in names}

    def timing(name, function):
        def timed_call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

        return timed_call

    for name, function in originals.items():
        setattr(module, name, timing(name, function))
    try:
        yield spent
    finally:
        for name, function in originals.items():
            setattr(module, name, function)


def print_table(rows: list[Measurement]) -> None:
    """Print ``rows`` as a table with one column per field and whether each met its goal."""
    headers = ("id", "benchmark", "ours", "baseline", "ratio", "spread", "goal", "met", "note")
    cells = [
        (r.id, r.name, r.ours, r.baseline, f"{r.ratio:.3f}", r.spread, r.goal, "yes" if r.met() else "NO", r.note)
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for c in cells:
        print(line.format(*c))
