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


def test_a_web_replica_passes_sigterm_on_after_the_drain_and_exits_with_gunicorns_status(tmp_path):
    """The web entrypoint keeps the command running through the drain, then hands it the SIGTERM swarm sent,
    and exits with the command's own status."""
    import signal
    import time

    from devtools.deploy import swarm

    entrypoint = stacks()["2-web"]["services"]["web"]["entrypoint"]
    script = entrypoint[2].replace("$$", "$").replace("/run/secrets", str(tmp_path))
    script = script.replace(f"sleep {swarm.DRAIN_SECONDS}", "sleep 5")
    child = 'trap "echo stopping; exit 3" TERM; echo serving; while :; do sleep 0.1; done'
    with subprocess.Popen(
        [*entrypoint[:2], script, entrypoint[3], "sh", "-c", child], stdout=subprocess.PIPE, text=True
    ) as shell:
        assert shell.stdout.readline() == "serving\n"
        shell.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert shell.poll() is None  # still serving during the drain
        assert shell.wait(timeout=30) == 3
        assert shell.stdout.read() == "stopping\n"
    web = stacks()["2-web"]["services"]["web"]
    graceful = int(production()["GUNICORN_GRACEFUL_TIMEOUT"])
    assert int(web["stop_grace_period"].rstrip("s")) > swarm.DRAIN_SECONDS + graceful
