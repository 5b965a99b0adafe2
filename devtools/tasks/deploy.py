"""``inv deploy.*``: check a config is fit for production and render its ECS or Kubernetes definitions."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, Exit

from devtools.cli import task, whole_number
from project.configuration import load_config


@task(
    help={
        "replicas": "Also check the connection budget for this many web replicas",
        "max_connections": "The database server's max_connections (default 100)",
        "reserved": "Connections kept free for superusers, psql and monitoring (default 10)",
        "cpus": "CPUs per replica, to size GUNICORN_WORKERS=0 (default: the rendered web size)",
        "surge": "Extra replicas during a rolling update (default 1)",
        "config": "Config name: config/NAME.json (default production)",
    }
)
def check(c, config="production", replicas=None, max_connections="100", reserved="10", cpus=None, surge="1"):
    """Check a config is fit for production; exit 1 if not."""
    from project import deploy_checks

    loaded = load_config(config, require_secrets=False)
    found = deploy_checks.problems(loaded, loaded)
    if replicas is not None:
        from devtools.deploy import connections

        budget = connections.budget(
            loaded,
            whole_number("--replicas", replicas, 1, 10_000),
            max_connections=whole_number("--max-connections", max_connections, 1, 262_143),
            reserved=whole_number("--reserved", reserved, 0, 262_143),
            cpus=connections.parse_cpus(cpus),
            surge=whole_number("--surge", surge, 0, 10_000),
        )
        print("Connection budget:\n" + "\n".join(f"  {line}" for line in budget.lines()))
        found += budget.problems()
    if found:
        raise Exit("\n".join(f"- {p}" for p in found) + f"\n{len(found)} problem(s) in the '{loaded.name}' config.", 1)
    print(f"The '{loaded.name}' config passes every deployment check.")
    if replicas is None:
        print("The connection budget was not checked; pass --replicas N to check it.")


@task(
    help={
        "target": "ecs (task definitions), kubernetes (manifests) or swarm (stack files)",
        "image": "The image to deploy, with its tag or digest (REGISTRY/NAME:TAG)",
        "output": "Folder to write one JSON file per definition into (default: print them)",
        "name": "Name prefix of the definitions (default: the project's name, pyproject.toml [tool.devtools])",
        "replicas": "Kubernetes and swarm: the web replicas (default 2)",
        "region": "ECS: the region of the logs (default: the secrets' ARNs' region)",
        "execution_role": "ECS: the execution role's ARN (reads the secrets, writes the logs)",
        "config": "Config name: config/NAME.json (default production)",
    }
)
def render(
    c,
    target,
    image="",
    output=None,
    name=None,
    replicas="2",
    region=None,
    execution_role=None,
    config="production",
):
    """Render ECS, Kubernetes or swarm definitions."""
    from devtools.deploy import rendering

    documents = rendering.render(
        load_config(config, require_secrets=False),
        target,
        image,
        name=name,
        replicas=whole_number("--replicas", replicas, 1, 10_000),
        region=region,
        execution_role=execution_role,
    )
    for path in rendering.write(documents, Path(output) if output else None):
        print(f"Wrote {path}")


ns = Collection("deploy", check, render)
