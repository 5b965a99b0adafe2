"""Build ``docker compose`` command lines for a config: ``docker/<config>.yml``, project name = config name."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devtools.errors import ComposeError

DOCKER_DIR = Path(__file__).resolve().parent.parent / "docker"


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


def command(config_name: str, *args: str, dry: bool = False) -> list[str]:
    """Return the full command line for compose ``args`` under ``config_name``."""
    path = compose_file(config_name)
    relative = path.relative_to(DOCKER_DIR.parent)
    return [*client(dry), "-p", config_name, "-f", str(relative), *args]
