"""Fixtures of the example app's tests: rows of its model."""

import pytest


@pytest.fixture
def user_factory(db_session):
    """Create users: ``user_factory(name="Ann")``; emails are unique unless given."""
    from project.models import User

    counter = iter(range(1, 1_000_000))

    def make(**fields):
        n = next(counter)
        user = User(email=fields.pop("email", f"user{n}@example.com"), name=fields.pop("name", f"User {n}"), **fields)
        db_session.add(user)
        db_session.commit()
        return user

    return make
