"""``inv config.*``: show, check and export the JSON configs."""

from __future__ import annotations

from invoke import Collection, Exit

from devtools.cli import task
from project.configuration import load_config


@task
def show(c, config=None):
    """Print each setting and its source, secrets masked."""
    from devtools.config_export import describe

    print(describe(load_config(config, require_secrets=False)))


@task
def check(c, config=None):
    """Validate all config files and compare their names."""
    from project.configuration import check_configs

    errors, warnings = check_configs()
    for line in warnings:
        print(f"warning: {line}")
    if errors:
        raise Exit("\n".join(f"Error: {e}" for e in errors), code=2)
    print("Every config file is valid.")


@task(help={"format": "ecs (container definition arrays), env (env-file) or tfvars (Terraform JSON)"})
def export(c, format="ecs", config=None):
    """Export a config as ECS arrays, an env-file or tfvars."""
    from devtools import config_export

    print(config_export.export(load_config(config, require_secrets=False), format))


ns = Collection("config", show, check, export)
