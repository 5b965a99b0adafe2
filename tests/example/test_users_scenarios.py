"""The example's scenarios (scenarios/users.py, scenarios/volume.py), through the example API."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scenarios import users as users_scenario


@pytest.mark.scenario("volume", size=40)
def test_volume_scenario_fills_and_analyzes(client):
    assert client.get("/users?per_page=1").json["total"] == 40


@given(st.integers(min_value=0, max_value=users_scenario.SPAN_DAYS * 24 * 3600 - 1))
def test_users_scenario_formats_dates_as_isoformat_does(seconds):
    assert users_scenario.created_at(seconds) == (users_scenario.EPOCH + timedelta(seconds=seconds)).isoformat()
