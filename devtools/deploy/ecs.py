"""ECS: RegisterTaskDefinition requests for the web service and the one-off migration (Fargate)."""

from __future__ import annotations

import re
from typing import Any

from devtools.deploy.plan import (
    APP_UID,
    KILL_MARGIN,
    MIGRATE_COMMAND,
    MIGRATE_SIZE,
    PARTITION,
    REGION_PATTERN,
    SECRETS_MANAGER_ARN,
    SSM_PARAMETER_ARN,
    WEB_SIZE,
    WRITABLE_PATHS,
    DeployPlan,
    Size,
    volume_name,
)
from devtools.errors import DeployError

# ECS stops a container with SIGKILL after stopTimeout seconds; Fargate allows at most 120.
ECS_MAX_STOP_TIMEOUT = 120
REGION = re.compile(rf"^{REGION_PATTERN}\Z")
IAM_ROLE_ARN = re.compile(rf"^arn:{PARTITION}:iam::[0-9]{{12}}:role/[A-Za-z0-9+=,.@_/-]+\Z")


def ecs_task_definitions(plan: DeployPlan, region: str | None = None, execution_role: str | None = None) -> dict:
    """Return RegisterTaskDefinition requests for the web service and the one-off migration, by file stem."""
    region = region or secret_region(plan)
    if not region:
        raise DeployError("No AWS region for the logs: pass --region (the config's secrets name none in an ARN).")
    if not REGION.match(region):
        raise DeployError(f"--region {region!r} is not an AWS region like eu-west-1.")
    if execution_role and not IAM_ROLE_ARN.match(execution_role):
        raise DeployError(
            f"--execution-role {execution_role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)."
        )
    web = _ecs_container(plan, "web", "app", region)
    web["portMappings"] = [{"name": "http", "containerPort": plan.port, "protocol": "tcp", "appProtocol": "http"}]
    if plan.metrics_port:
        # For a scraper in the task's network (a sidecar or the VPC); the load balancer targets only http.
        web["portMappings"].append(
            {"name": "metrics", "containerPort": plan.metrics_port, "protocol": "tcp", "appProtocol": "http"}
        )
    probe = (
        "import sys, urllib.request; "
        f"sys.exit(urllib.request.urlopen('http://127.0.0.1:{plan.port}/healthz', timeout=2).status != 200)"
    )
    web["healthCheck"] = {
        "command": ["CMD", "python", "-c", probe],
        "interval": 30,
        "timeout": 5,
        "retries": 3,
        "startPeriod": 15,
    }
    web["stopTimeout"] = min(plan.graceful_timeout + KILL_MARGIN, ECS_MAX_STOP_TIMEOUT)
    migrate = _ecs_container(plan, "migrate", "migration", region)
    migrate["command"] = MIGRATE_COMMAND
    return {
        "web": _ecs_task(f"{plan.base}-web", web, WEB_SIZE, execution_role),
        "migrate": _ecs_task(f"{plan.base}-migrate", migrate, MIGRATE_SIZE, execution_role),
    }


def _ecs_container(plan: DeployPlan, name: str, role: str, region: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": plan.image,
        "essential": True,
        "user": f"{APP_UID}:{APP_UID}",
        "readonlyRootFilesystem": True,
        "mountPoints": [
            {"sourceVolume": volume_name(path), "containerPath": path, "readOnly": False} for path in WRITABLE_PATHS
        ],
        "environment": [{"name": k, "value": v} for k, v in plan.environment(role)],
        "secrets": [{"name": k, "valueFrom": v} for k, v in plan.secrets_for(role)],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": f"/ecs/{plan.base}",
                "awslogs-region": region,
                "awslogs-stream-prefix": name,
            },
        },
    }


def _ecs_task(family: str, container: dict, size: Size, execution_role: str | None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": {"operatingSystemFamily": "LINUX"},
        "cpu": str(size.cpu_units),
        "memory": str(size.memory_mib),
        "containerDefinitions": [container],
        # Task storage (Fargate's ephemeral storage), writable while the root filesystem is read-only.
        "volumes": [{"name": volume_name(path)} for path in WRITABLE_PATHS],
    }
    if execution_role:
        task["executionRoleArn"] = execution_role
    return task


def secret_region(plan: DeployPlan) -> str | None:
    """Return the AWS region named by the secrets' ARNs, or None when none is an ARN."""
    for _, location in plan.secrets:
        match = SECRETS_MANAGER_ARN.match(location) or SSM_PARAMETER_ARN.match(location)
        if match:
            return match["region"]
    return None
