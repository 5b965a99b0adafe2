"""The connection budget: replicas, workers and pools against the server's max_connections (``inv deploy.check``)."""

import pytest

from devtools.deploy import connections
from devtools.errors import DeployError
from project.configuration import load_config
from tests.helpers import STRONG, one_sentence
from tests.helpers import inv as run_inv


def production():
    return load_config("production", environ={}, require_secrets=False)


def test_budget_counts_replicas_workers_pools_the_rolling_update_and_the_migration():
    budget = connections.budget(production(), 2)
    assert budget.workers == 3  # GUNICORN_WORKERS=0 on the rendered 0.5 CPU: 2 x 1 + 1
    assert "0.5 CPU from the rendered web size" in budget.workers_note
    assert budget.pool == 10 and budget.per_replica == 30
    assert budget.peak() == 90 and budget.available == 90
    assert budget.problems() == []
    assert budget.most_replicas() == 2


def test_budget_says_what_to_change_when_replicas_exceed_it():
    budget = connections.budget(production(), 3)
    (problem,) = budget.problems()
    assert "3 replicas can open 120 database connections but the server allows 90" in problem
    assert "run at most 2 replicas" in problem and "GUNICORN_WORKERS" in problem and "max_connections" in problem


def test_budget_follows_cpus_explicit_workers_and_the_server():
    assert connections.budget(production(), 1, cpus=4).workers == 9
    config = production().replace(GUNICORN_WORKERS="2")
    budget = connections.budget(config, 10, max_connections=500, reserved=20, surge=0)
    assert budget.workers == 2 and budget.peak() == 201 and budget.problems() == []
    assert "no replica fits" in connections.budget(production(), 1, max_connections=20).problems()[0]
    with pytest.raises(DeployError, match="leaves no connection"):
        connections.budget(production(), 1, max_connections=10, reserved=10)


@pytest.mark.parametrize("text", ["0", "-1", "two", "nan", "2000"])
def test_bad_cpus_are_refused(text):
    with pytest.raises(DeployError, match="--cpus must be a number of CPUs"):
        connections.parse_cpus(text)


def strong_env():
    return {"SECRET_KEY": STRONG["SECRET_KEY"], "POSTGRES_PASSWORD": STRONG["POSTGRES_PASSWORD"]}


def test_deploy_check_passes_a_budget_that_fits_and_shows_the_arithmetic():
    result = run_inv("deploy.check", "--replicas", "2", env=strong_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Connections per replica: 3 workers x 10 (pool_size + max_overflow) = 30." in result.stdout
    assert "GUNICORN_WORKERS=0 means 2 x CPUs + 1" in result.stdout


def test_deploy_check_says_when_it_did_not_check_the_budget():
    result = run_inv("deploy.check", env=strong_env())
    assert result.returncode == 0, result.stderr
    assert "pass --replicas N" in result.stdout and "Connection budget:" not in result.stdout


def test_deploy_check_fails_too_many_replicas_with_exit_1_naming_what_to_change():
    result = run_inv("deploy.check", "--replicas", "5", "--cpus", "1", env=strong_env())
    assert result.returncode == 1
    assert "5 replicas can open 180 database connections but the server allows 90" in result.stderr
    assert "run at most 2 replicas" in result.stderr
    bigger = run_inv("deploy.check", "--replicas", "5", "--max-connections", "400", env=strong_env())
    assert bigger.returncode == 0, bigger.stderr


def test_deploy_check_refuses_a_bad_option_with_exit_2():
    result = run_inv("deploy.check", "--replicas", "2", "--cpus", "lots", env=strong_env())
    assert result.returncode == 2 and "--cpus must be a number" in one_sentence(result.stderr)
