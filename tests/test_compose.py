"""The compose command lines: client detection, file selection, and clear errors without Docker."""

import os
import stat

import pytest

from devtools import compose
from devtools.errors import ComposeError


def fake_program(directory, name, exit_code):
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_command_names_project_and_file():
    assert compose.command("development", "up", dry=True) == [
        "docker",
        "compose",
        "-p",
        "development",
        "-f",
        "docker/development.yml",
        "up",
    ]


def test_v2_client_is_preferred(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 0)
    fake_program(tmp_path, "docker-compose", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.client() == [str(tmp_path / "docker"), "compose"]


def test_v1_client_is_the_fallback(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 1)
    fake_program(tmp_path, "docker-compose", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.client() == [str(tmp_path / "docker-compose")]


def test_no_client_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ComposeError, match="No Docker Compose client found"):
        compose.client()


def test_no_engine_is_one_sentence(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ComposeError, match="The Docker engine is not running"):
        compose.engine_running()
    compose.engine_running(dry=True)


def test_missing_compose_file_lists_the_configs_that_have_one():
    with pytest.raises(
        ComposeError, match="no compose file docker/testing.yml; configs with one: development, production"
    ):
        compose.compose_file("testing")


def test_compose_files_take_their_variables_from_the_config():
    text = (compose.DOCKER_DIR / "production.yml").read_text()
    assert "${SECRET_KEY:?" in text and "${POSTGRES_PASSWORD:?" in text
    assert "condition: service_healthy" in text and "version:" not in text
