"""Items with labels drawn from the seed, for the tooling's tests."""

from devtools.scenarios import copy_rows

DEFAULT_SIZE = 50
WORDS = ["amber", "birch", "cedar", "dune", "ember", "fjord", "grove", "heath", "inlet", "juniper"]


def rows(size, rng):
    """Yield (label,) rows: unique labels, their words drawn from ``rng``."""
    for i in range(size):
        yield (f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}",)


def fill(connection, *, size, rng):
    """Load ``size`` items."""
    copy_rows(connection, "items", ("label",), rows(size, rng), total=size)
