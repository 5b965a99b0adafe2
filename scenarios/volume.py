"""Realistic volume: 100,000 users by default, for trying indexes and query plans."""

from scenarios.users import fill as fill_users

DEFAULT_SIZE = 100_000


def fill(connection, *, size, rng):
    """Load ``size`` users, as the users scenario does, and refresh the planner's statistics."""
    fill_users(connection, size=size, rng=rng)
    connection.exec_driver_sql("ANALYZE users")
