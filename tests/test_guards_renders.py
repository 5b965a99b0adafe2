"""The renders, whole: every document of every target for one fixed config, byte for byte as reviewed (the engines'
own schemas check them in test_deploy.py, which cannot tell a wrong value of the right type), and the limits a
single config does not reach."""

import json

import pytest

from devtools.deploy import ecs, rendering
from devtools.errors import DeployError
from tests import deploy_renders
from tests.deploy_renders import FIXTURES, IMAGE, NAME

REWRITE = "if the change is intended, rewrite them with `python -m tests.deploy_renders` and review the diff"


@pytest.mark.parametrize("target", rendering.TARGETS)
def test_each_target_writes_exactly_the_reviewed_documents(tmp_path, target):
    documents = deploy_renders.documents()[target]
    paths = rendering.write(documents, tmp_path / "nested" / target)
    assert [p.name for p in paths] == [f"{stem}.json" for stem in documents]
    reviewed = sorted(p.name for p in (FIXTURES / target).glob("*.json"))
    assert sorted(p.name for p in paths) == reviewed, f"other files than tests/deploy-renders/{target}/; {REWRITE}"
    for path in paths:
        expected = (FIXTURES / target / path.name).read_bytes()
        assert path.read_bytes() == expected, f"{target}/{path.name} differs from the reviewed one; {REWRITE}"


def test_writing_again_replaces_the_documents(tmp_path):
    documents = deploy_renders.documents()["swarm"]
    rendering.write({stem: {} for stem in documents}, tmp_path)
    rendering.write(documents, tmp_path)
    assert json.loads((tmp_path / "2-web.json").read_text()) == documents["2-web"]


def test_without_an_output_folder_the_documents_are_printed_as_indented_json(capsys):
    documents = deploy_renders.documents()["kubernetes"]
    assert rendering.write(documents, None) == []
    printed = capsys.readouterr().out
    assert json.loads(printed) == documents
    assert printed.splitlines()[:2] == ["{", '  "1-configmap": {'] and printed.endswith("}\n")


@pytest.mark.parametrize("target", ["", "ECS", "k8s", "docker"])
def test_an_unknown_target_is_refused_naming_the_valid_ones(target):
    with pytest.raises(DeployError) as refused:
        rendering.render(deploy_renders.config(), target, IMAGE, name=NAME)
    assert str(refused.value) == f"--target {target!r} is not a deploy target; valid targets: ecs, kubernetes, swarm."


@pytest.mark.parametrize(("graceful", "stop"), [(20, 25), (114, 119), (115, 120), (116, 120), (300, 120)])
def test_ecs_stops_a_container_after_the_graceful_timeout_and_margin_up_to_fargates_120_seconds(
    tmp_path, graceful, stop
):
    config = deploy_renders.config_with(tmp_path, GUNICORN_GRACEFUL_TIMEOUT=str(graceful))
    web = rendering.render(config, "ecs", IMAGE, name=NAME)["web"]["containerDefinitions"][0]
    assert ecs.ECS_MAX_STOP_TIMEOUT == 120
    assert web["stopTimeout"] == stop


@pytest.mark.parametrize("replicas", [1, 2, 7])
def test_the_replica_count_reaches_the_orchestrators(replicas):
    config = deploy_renders.config()
    kubernetes = rendering.render(config, "kubernetes", IMAGE, name=NAME, replicas=replicas)
    swarm = rendering.render(config, "swarm", IMAGE, name=NAME, replicas=replicas)
    assert kubernetes["4-deployment"]["spec"]["replicas"] == replicas
    assert swarm["2-web"]["services"]["web"]["deploy"]["replicas"] == replicas


def test_both_orchestrators_run_two_replicas_unless_told():
    config = deploy_renders.config()
    assert rendering.render(config, "kubernetes", IMAGE, name=NAME)["4-deployment"]["spec"]["replicas"] == 2
    assert rendering.render(config, "swarm", IMAGE, name=NAME)["2-web"]["services"]["web"]["deploy"]["replicas"] == 2
