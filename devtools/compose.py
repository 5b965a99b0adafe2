"""Build ``docker compose`` command lines for a config: ``docker/<config>.yml``, compose project
``<project name>-<config>`` (so two projects made from this one keep their stacks apart).

Every command gets one environment: the config as the loader resolves it (a shell variable named like an entry
overrides it, for every service alike), the pinned base images, and the host user's ids. Only the subcommands
that start containers need the config's secrets; ``ps``, ``logs`` and ``down`` work without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from devtools.errors import ComposeError
from devtools.identity import project_name
from devtools.images import image_environ
from project.configuration import Config, load_config

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"
# Subcommands that start containers, and so hand the config's secrets to them.
STARTING = frozenset({"up", "run", "create", "start", "restart"})
# Compose's global options that take a value, so the word after one is not the subcommand.
VALUED_OPTIONS = frozenset(
    {
        "--ansi",
        "--env-file",
        "-f",
        "--file",
        "--parallel",
        "--profile",
        "--progress",
        "-p",
        "--project-directory",
        "--project-name",
    }
)


def compose_file(config_name: str, docker_dir: Path = DOCKER_DIR) -> Path:
    """Return ``docker/<config_name>.yml``, or raise a ComposeError listing the compose files there are."""
    path = docker_dir / f"{config_name}.yml"
    if not path.is_file():
        names = ", ".join(sorted(p.stem for p in docker_dir.glob("*.yml"))) or "none"
        raise ComposeError(f"There is no compose file docker/{config_name}.yml; configs with one: {names}.")
    return path


def client(dry: bool = False) -> list[str]:
    """Return the compose client: ``docker compose`` (v2) if it answers, else ``docker-compose`` (v1).

    When ``dry`` the v2 form is assumed without asking, so ``inv --dry`` works on machines with no Docker.
    """
    if dry:
        return ["docker", "compose"]
    docker = shutil.which("docker")
    if docker:
        answer = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if answer.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    raise ComposeError("No Docker Compose client found: install Docker with the compose plugin (`docker compose`).")


def engine_running(dry: bool = False) -> None:
    """Raise a ComposeError when no Docker engine answers."""
    if dry:
        return
    answer = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if answer.returncode != 0:
        raise ComposeError("The Docker engine is not running (docker info failed); start Docker and try again.")


def command(config_name: str, *args: str, dry: bool = False, project: str | None = None) -> list[str]:
    """Return the full command line for compose ``args`` under ``config_name`` (compose project: ``project``, by
    default :func:`project_for` the config)."""
    path = compose_file(config_name)
    relative = path.relative_to(DOCKER_DIR.parent)
    return [*client(dry), "-p", project or project_for(config_name), "-f", str(relative), *args]


def project_for(config_name: str) -> str:
    """Return the compose project name of a config's stack: ``<project name>-<config>``."""
    return f"{project_name()}-{config_name}"


def subcommand(args: Sequence[str]) -> str | None:
    """Return the compose subcommand in ``args``: the first word that is neither an option nor an option's value."""
    words = iter(args)
    for word in words:
        if word in VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def needs_secrets(args: Sequence[str]) -> bool:
    """Say whether compose ``args`` start containers, which then need the config's secrets."""
    return subcommand(args) in STARTING


def load(config_name: str | None, args: Sequence[str], dry: bool = False) -> Config:
    """Load the config for compose ``args``: its secrets required only when they start containers (not ``dry``)."""
    return load_config(config_name, require_secrets=needs_secrets(args) and not dry)


def environ(config: Config) -> dict[str, str]:
    """Return compose's environment for ``config``: its settings, the pinned images and the host user's ids."""
    ids = {"HOST_UID": str(os.getuid()), "HOST_GID": str(os.getgid())} if hasattr(os, "getuid") else {}
    return {**config.environ(), **image_environ(config), **ids}


def invocation(config_name: str | None, args: Sequence[str], dry: bool = False) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment that run compose ``args`` under a config, the engine checked."""
    config = load(config_name, args, dry)
    argv = command(config.name, *args, dry=dry)
    engine_running(dry)
    return argv, environ(config)
