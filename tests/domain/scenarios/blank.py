"""The schema and no rows."""

DEFAULT_SIZE = 0


def fill(connection, *, size, rng):
    """Leave the database empty."""
