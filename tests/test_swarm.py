"""The swarm render: what a rolling update relies on, and secrets named, never carried. ``nox -s rollout`` runs
the files on a real swarm; these tests pin down the promises it shows."""

import json
import subprocess

import pytest

from devtools.deploy import rendering
from project.configuration import load_config
from tests.helpers import STRONG

IMAGE = "registry.example.com/app:1.4.2"


def production():
    return load_config("production", environ={}, require_secrets=False)


def stacks(**options):
    return rendering.render(production(), "swarm", IMAGE, **options)


def test_the_migration_job_comes_first_and_runs_once_as_the_owner_role():
    rendered = stacks()
    assert list(rendered) == ["1-migrate", "2-web"]
    (job,) = rendered["1-migrate"]["services"].values()
    assert job["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    assert job["deploy"]["mode"] == "replicated-job"
    assert job["deploy"]["restart_policy"]["condition"] == "on-failure"
    assert job["environment"]["DATABASE_ROLE"] == "migration"


def test_web_rolls_one_replica_at_a_time_new_before_old_gated_on_readyz_and_rolls_back_on_failure():
    web = stacks(replicas=3)["2-web"]["services"]["web"]
    deploy = web["deploy"]
    assert deploy["replicas"] == 3
    assert deploy["update_config"]["order"] == "start-first"
    assert deploy["update_config"]["parallelism"] == 1
    assert deploy["update_config"]["failure_action"] == "rollback"
    assert deploy["rollback_config"]["order"] == "start-first"
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    graceful = int(production()["GUNICORN_GRACEFUL_TIMEOUT"])
    assert int(web["stop_grace_period"].rstrip("s")) > graceful


def test_every_process_runs_non_root_read_only_without_capabilities_and_within_limits():
    for document in stacks().values():
        for service in document["services"].values():
            assert service["user"] == "10001:10001"
            assert service["read_only"] is True
            assert [(v["type"], v["target"]) for v in service["volumes"]] == [("tmpfs", "/tmp")]
            assert service["cap_drop"] == ["ALL"]
            limits = service["deploy"]["resources"]["limits"]
            assert float(limits["cpus"]) > 0 and limits["memory"].endswith("M")


def test_secrets_are_swarm_secrets_by_name_never_values_and_each_process_gets_its_roles_only():
    rendered = stacks()
    text = json.dumps(rendered)
    assert "arn:aws" not in text and STRONG["SECRET_KEY"] not in text
    web = rendered["2-web"]["services"]["web"]
    job = rendered["1-migrate"]["services"]["migrate"]
    assert {s["target"] for s in web["secrets"]} == {"SECRET_KEY", "POSTGRES_PASSWORD"}
    assert {s["target"] for s in job["secrets"]} == {"SECRET_KEY", "POSTGRES_MIGRATION_PASSWORD"}
    assert not {"SECRET_KEY", "POSTGRES_PASSWORD"} & set(web["environment"])
    declared = set(rendered["2-web"]["secrets"])
    assert {s["source"] for s in web["secrets"]} == declared
    # Readable by the app's user alone: swarm's default owner is root, whom the app does not run as.
    assert all((s["uid"], s["gid"], s["mode"]) == ("10001", "10001", 0o400) for s in web["secrets"] + job["secrets"])
    assert all(rendered["2-web"]["secrets"][name] == {"external": True} for name in declared)


def test_the_secret_export_step_hands_the_files_to_the_command_as_its_environment(tmp_path):
    """Run the stack's entrypoint with a folder standing in for /run/secrets: the command sees each file's
    content under the file's name, and gets its own arguments unchanged (``$$`` is how a stack file writes $)."""
    web = stacks()["2-web"]["services"]["web"]
    entrypoint = web["entrypoint"]
    (tmp_path / "SECRET_KEY").write_text("sentinel-value with spaces")
    script = entrypoint[2].replace("$$", "$").replace("/run/secrets", str(tmp_path))
    shown = subprocess.run(
        [*entrypoint[:2], script, entrypoint[3], "sh", "-c", 'printf "%s|%s" "$SECRET_KEY" "$1"', "-", "arg one"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout == "sentinel-value with spaces|arg one"


@pytest.mark.parametrize("replicas", [1, 5])
def test_the_replicas_follow_the_option(replicas):
    assert stacks(replicas=replicas)["2-web"]["services"]["web"]["deploy"]["replicas"] == replicas
