"""Render a config for a deploy target and write the documents, one JSON file each."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.deploy.ecs import ecs_task_definitions
from devtools.deploy.kubernetes import kubernetes_manifests
from devtools.deploy.plan import plan
from devtools.errors import DeployError
from project.configuration import Config, display_path

TARGETS = ("ecs", "kubernetes")


def render(
    config: Config,
    target: str,
    image: str | None,
    *,
    name: str | None = None,
    replicas: int = 2,
    region: str | None = None,
    execution_role: str | None = None,
) -> dict[str, dict]:
    """Return ``target``'s definitions for ``config`` by file stem; raise DeployError when they cannot be made."""
    if target not in TARGETS:
        raise DeployError(f"--target {target!r} is not a deploy target; valid targets: {', '.join(TARGETS)}.")
    checked = plan(config, image, name)
    if target == "ecs":
        return ecs_task_definitions(checked, region, execution_role)
    return kubernetes_manifests(checked, replicas)


def write(documents: dict[str, dict], output: Path | None) -> list[Path]:
    """Write each document as ``OUTPUT/STEM.json``; return the paths (none when printed to stdout instead)."""
    if output is None:
        print(json.dumps(documents, indent=2))
        return []
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DeployError(f"--output {display_path(output)}: cannot create the folder ({exc.strerror}).") from None
    paths = []
    for stem, document in documents.items():
        path = output / f"{stem}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
