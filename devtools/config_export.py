"""Show a loaded config, and export it for ECS, Docker/compose env-files and Terraform.

Standard library only: exports run in containers and CI, where Flask may not be installed.
"""

from __future__ import annotations

import json

from project.configuration import Config, ConfigError, read_entries
from project.deploy_checks import SECRET_NAME

FORMATS = ("ecs", "env", "tfvars")
MASK = "********"


def describe(config: Config) -> str:
    """Return the effective settings, one per line, with the source of each; secrets masked."""
    lines = [f"Config '{config.name}' ({config.display_path()}):"]
    width = max((len(e.name) for e in config.entries), default=0)
    for e in config.entries:
        if e.secret or SECRET_NAME.search(e.name):
            # Masked whatever its source: a password given as a literal or from the shell is still a password.
            value = MASK if e.value else "(unset)" if e.value is None else ""
        else:
            value = e.value
        source = {
            "file": "file",
            "environment": "environment (overrides the file)",
            "override": "set by the command",
            "unset": f"secret: set the environment variable {e.name}",
        }[e.source]
        if e.secret and e.source == "environment":
            source = "secret, from the environment"
        lines.append(f"  {e.name:<{width}}  {value:<30}  {source}")
    return "\n".join(lines)


def export(config: Config, fmt: str) -> str:
    """Return ``config`` in format ``fmt``: ecs, env or tfvars."""
    if fmt == "ecs":
        return export_ecs(config)
    if fmt == "env":
        return export_env(config)
    if fmt == "tfvars":
        return export_tfvars(config)
    raise ConfigError(f"'{fmt}' is not an export format; valid formats: {', '.join(FORMATS)}.")


def export_ecs(config: Config) -> str:
    """Return the container definition's ``environment`` and ``secrets`` arrays as JSON.

    File values are exported, not environment overrides: the export describes the deployment.
    """
    environment, secrets = [], []
    for e in _file_entries(config):
        if e["valueFrom"] is not None:
            secrets.append({"name": e["name"], "valueFrom": e["valueFrom"]})
        else:
            environment.append({"name": e["name"], "value": e["value"]})
    return json.dumps({"environment": environment, "secrets": secrets}, indent=2)


def export_env(config: Config) -> str:
    """Return a Docker/compose env-file; secrets are left for the environment to supply."""
    lines = [f"# Generated from {config.display_path()} by `inv config.export --format env`."]
    for e in _file_entries(config):
        if e["valueFrom"] is not None:
            lines.append(f"# {e['name']} is a secret: set it in the environment (stored at {e['valueFrom']}).")
            continue
        if "\n" in e["value"]:
            raise ConfigError(f"{config.display_path()}: {e['name']} holds a newline, which an env-file cannot carry.")
        lines.append(f"{e['name']}={e['value']}")
    return "\n".join(lines)


def export_tfvars(config: Config) -> str:
    """Return a JSON ``.tfvars`` file: the plain settings as a map, the secrets' locations as another."""
    environment, secrets = {}, {}
    for e in _file_entries(config):
        if e["valueFrom"] is not None:
            secrets[e["name"]] = e["valueFrom"]
        else:
            environment[e["name"]] = e["value"]
    return json.dumps({"environment": environment, "secrets": secrets}, indent=2)


def _file_entries(config: Config) -> list[dict]:
    return [
        {"name": item["name"], "value": item.get("value"), "valueFrom": item.get("valueFrom")}
        for item in read_entries(config.path)
    ]
