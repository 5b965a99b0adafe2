"""An empty, freshly migrated database: the schema and nothing else."""

DEFAULT_SIZE = 0


def fill(connection, *, size, rng):
    """Leave the database empty."""
