"""Config export: ECS arrays, env-files and tfvars, read back by the real Terraform."""

import json
import os
import shutil
import subprocess

import pytest

from devtools.config_export import describe, export
from project.configuration import ConfigError, load_config
from tests.helpers import ROOT


def production():
    return load_config("production", environ={}, require_secrets=False)


def test_ecs_export_splits_environment_and_secrets():
    data = json.loads(export(production(), "ecs"))
    assert all(set(e) == {"name", "value"} for e in data["environment"])
    assert {"name": "SECRET_KEY", "valueFrom": production().entry("SECRET_KEY").value_from} in data["secrets"]


def test_export_describes_the_file_not_the_shell():
    config = load_config("development", environ={"POSTGRES_DB": "from_shell"})
    assert "POSTGRES_DB=app_dev" in export(config, "env").splitlines()


def test_env_export_leaves_secrets_to_the_environment():
    lines = export(production(), "env").splitlines()
    assert "POSTGRES_HOST=db" in lines
    assert not any(line.startswith(("SECRET_KEY=", "POSTGRES_PASSWORD=")) for line in lines)


def test_env_export_refuses_a_newline(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps([{"name": "A", "value": "1\n2"}]))
    with pytest.raises(ConfigError, match="A holds a newline"):
        export(load_config("x", environ={}, config_dir=tmp_path), "env")


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid formats: ecs, env, tfvars"):
        export(production(), "yaml")


def test_describe_masks_secrets_and_names_sources():
    environ = {"SECRET_KEY": "hunter2-but-longer", "POSTGRES_DB": "x"}
    config = load_config("production", environ=environ, require_secrets=False)
    text = describe(config.replace(LOG_LEVEL="DEBUG"))
    assert "hunter2" not in text
    assert "secret, from the environment" in text
    assert "environment (overrides the file)" in text and "set by the command" in text
    assert "secret: set the environment variable POSTGRES_PASSWORD" in text


def terraform(expression, workdir):
    """Evaluate ``expression`` with ``terraform console`` in ``workdir``; return the decoded JSON value."""
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    result = subprocess.run(
        ["terraform", "console"],
        input=f"jsonencode({expression})\n",
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip()))


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_terraform_reads_the_tfvars_export_and_the_raw_file(tmp_path):
    config = production()
    (tmp_path / "production.tfvars.json").write_text(export(config, "tfvars"))
    exported = terraform('jsondecode(file("production.tfvars.json"))', tmp_path)
    plain = {e.name: e.value for e in config.entries if not e.secret}
    assert exported["environment"] == plain
    assert exported["secrets"] == {e.name: e.value_from for e in config.entries if e.secret}
    raw = terraform(
        '{for e in jsondecode(file("%s")) : e.name => lookup(e, "value", null) if can(e.value)}'
        % (ROOT / "config" / "production.json"),
        tmp_path,
    )
    assert raw == plain
