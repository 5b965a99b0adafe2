"""The connection budget at its edges: the CPU range, the replica cap, what it assumes when a setting is absent,
and the sentences `inv deploy.check` prints (test_connection_budget.py runs the task itself)."""

import dataclasses
import math

import pytest

from devtools.deploy import connections
from devtools.deploy.plan import WEB_SIZE
from devtools.errors import DeployError
from project.configuration import load_config


def production(**changes):
    config = load_config("production", environ={}, require_secrets=False)
    return config.replace(**changes) if changes else config


def without(config, *names):
    return dataclasses.replace(config, entries=tuple(e for e in config.entries if e.name not in names))


def budget(replicas=2, workers=3, pool=10, surge=1, max_connections=100, reserved=10):
    return connections.Budget(replicas, workers, "note", pool, surge, max_connections, reserved)


@pytest.mark.parametrize(("text", "cpus"), [("0.1", 0.1), ("0.5", 0.5), ("1", 1.0), ("2", 2.0), ("1024", 1024.0)])
def test_cpus_from_a_tenth_to_1024_are_accepted(text, cpus):
    assert connections.parse_cpus(text) == cpus


@pytest.mark.parametrize("text", [None, ""])
def test_no_cpus_means_none(text):
    assert connections.parse_cpus(text) is None


@pytest.mark.parametrize("text", ["0", "-0.5", "1024.001", "1025", "nan", "inf", "two", " "])
def test_other_cpus_are_refused_in_one_sentence(text):
    with pytest.raises(DeployError) as refused:
        connections.parse_cpus(text)
    assert str(refused.value) == f"--cpus must be a number of CPUs from 0.1 to 1024 such as 0.5 or 2, got {text!r}."


@pytest.mark.parametrize(("cpus", "workers"), [(0.1, 3), (0.5, 3), (1, 3), (1.01, 5), (2, 5), (4, 9)])
def test_auto_workers_count_a_part_of_a_cpu_as_a_whole_one(cpus, workers):
    assert connections.auto_workers(cpus) == workers


def test_the_peak_is_the_rolling_update_or_the_migration_whichever_is_more():
    assert budget(replicas=2, workers=3, pool=10, surge=1).peak() == 90  # 3 replicas' worth during an update
    assert budget(replicas=2, workers=3, pool=10, surge=0).peak() == 61  # 2 replicas + the migration's one
    assert budget(replicas=2).peak(5) == 180
    assert connections.MIGRATION_CONNECTIONS == 1


@pytest.mark.parametrize(("max_connections", "most"), [(40, 0), (70, 1), (100, 2), (129, 2), (130, 3), (131, 3)])
def test_most_replicas_is_the_largest_count_whose_peak_fits(max_connections, most):
    # per replica 30, surge 1: n replicas peak at 30 (n + 1); available = max_connections - 10.
    assert budget(max_connections=max_connections).most_replicas() == most


def test_most_replicas_stops_at_a_hundred_thousand():
    huge = budget(workers=1, pool=1, surge=0, max_connections=10**9, reserved=0)
    assert huge.most_replicas() == 100_000


def test_the_arithmetic_is_shown_line_by_line():
    shown = connections.Budget(2, 3, "from GUNICORN_WORKERS", 10, 1, 100, 10).lines()
    assert shown == [
        "Workers per replica: 3 (from GUNICORN_WORKERS).",
        "Connections per replica: 3 workers x 10 (pool_size + max_overflow) = 30.",
        "Peak: 2 replicas + 1 during a rolling update, or + the migration's 1: 90 connections.",
        "Available: max_connections 100 - 10 reserved = 90.",
    ]


def test_a_budget_that_fits_exactly_has_no_problem():
    assert budget(max_connections=100).problems() == []


def test_a_budget_one_over_says_how_many_replicas_fit_and_what_else_to_change():
    assert budget(max_connections=99).problems() == [
        "2 replicas can open 90 database connections but the server allows 89 (99 max_connections - 10 reserved): "
        "run at most 1 replicas, lower GUNICORN_WORKERS (now 3) or pool_size + max_overflow (now 10, "
        "project/settings.py), raise the server's max_connections, or put a pooler such as PgBouncer in front."
    ]


def test_a_budget_where_no_replica_fits_says_so():
    (problem,) = budget(max_connections=50).problems()
    assert ": no replica fits, lower GUNICORN_WORKERS (now 3)" in problem


def test_set_workers_are_taken_as_they_are():
    found = connections.budget(production(GUNICORN_WORKERS="4"), 2, cpus=8)
    assert (found.workers, found.workers_note) == (4, "GUNICORN_WORKERS")


@pytest.mark.parametrize("config", [production(GUNICORN_WORKERS="0"), without(production(), "GUNICORN_WORKERS")])
def test_auto_or_absent_workers_assume_the_rendered_web_size(config):
    found = connections.budget(config, 2)
    assert found.workers == connections.auto_workers(WEB_SIZE.cpus) == 3
    assert found.workers_note == (
        "GUNICORN_WORKERS=0 means 2 x CPUs + 1; 0.5 CPU from the rendered web size; pass --cpus for another"
    )


def test_auto_workers_follow_given_cpus():
    found = connections.budget(production(GUNICORN_WORKERS="0"), 2, cpus=2.5)
    assert found.workers == 7
    assert found.workers_note == "GUNICORN_WORKERS=0 means 2 x CPUs + 1; 2.5 CPU from --cpus"


def test_the_pool_is_the_config_classes_pool_size_plus_overflow():
    from project.settings import config_class

    options = config_class("production").SQLALCHEMY_ENGINE_OPTIONS
    found = connections.budget(production(), 1)
    assert found.pool == options["pool_size"] + options["max_overflow"]
    assert without(production(), "FLASK_CONFIG").get("FLASK_CONFIG") is None
    assert connections.budget(without(production(), "FLASK_CONFIG"), 1).pool == found.pool


def test_the_defaults_are_postgresqls_and_one_surge_replica():
    found = connections.budget(production(), 2)
    assert (found.max_connections, found.reserved, found.surge, found.replicas) == (100, 10, 1, 2)


@pytest.mark.parametrize(("max_connections", "reserved"), [(10, 10), (10, 11)])
def test_reserving_every_connection_is_refused(max_connections, reserved):
    with pytest.raises(DeployError) as refused:
        connections.budget(production(), 1, max_connections=max_connections, reserved=reserved)
    assert str(refused.value) == (
        f"--reserved {reserved} leaves no connection of --max-connections {max_connections}; reserve fewer."
    )


def test_reserving_all_but_one_connection_is_allowed():
    assert connections.budget(production(), 1, max_connections=10, reserved=9).available == 1


def test_cpus_is_a_fraction_of_the_ecs_units():
    assert WEB_SIZE.cpus == 0.5 and not math.isnan(WEB_SIZE.cpus)


@pytest.mark.parametrize(
    ("options", "pool"),
    [
        ({"pool_size": 7, "max_overflow": 2}, 9),
        ({"pool_size": 7}, 17),  # SQLAlchemy's QueuePool defaults: pool_size 5, max_overflow 10
        ({"max_overflow": 2}, 7),
        ({}, 15),
    ],
)
def test_the_pool_is_the_config_classes_with_sqlalchemys_defaults_for_what_it_leaves_out(monkeypatch, options, pool):
    asked = []

    def config_class(name):
        asked.append(name)
        return type("Class", (), {"SQLALCHEMY_ENGINE_OPTIONS": options})

    monkeypatch.setattr(connections, "config_class", config_class)
    assert connections.budget(production(FLASK_CONFIG="development"), 1).pool == pool
    assert connections.budget(without(production(), "FLASK_CONFIG"), 1).pool == pool
    assert asked == ["development", "production"]
