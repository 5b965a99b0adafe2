"""The example's scenarios (scenarios/users.py, scenarios/volume.py), through the example API."""

import pytest


@pytest.mark.scenario("volume", size=40)
def test_volume_scenario_fills_and_analyzes(client):
    assert client.get("/users?per_page=1").json["total"] == 40
