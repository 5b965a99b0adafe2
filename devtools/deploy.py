"""Render a config into deployable definitions (ECS task definitions, Kubernetes manifests) and check that the
replicas' connection pools fit the database server.

What the renders carry comes from one config file: its plain values become the containers' environment (an
ECS ``environment`` array, a Kubernetes ConfigMap), its ``valueFrom`` entries become references to secrets
that live elsewhere (ECS ``secrets``, Kubernetes ``secretKeyRef``), never values. Each process gets only the
database password of the role it connects as (``DATABASE_ROLE``): the web service the app role's, the
migration the owner role's.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.errors import DeployError
from project.configuration import ROLE_PASSWORDS, Config, display_path, read_entries
from project.deploy_checks import literal_secrets
from project.settings import config_class

TARGETS = ("ecs", "kubernetes")
# The Kubernetes version the manifests are written for and validated against (tests/test_deploy.py).
KUBERNETES_VERSION = "1.33.0"
# The image's user (docker/Dockerfile): the renders never run the app as root.
APP_UID = 10001
MIGRATE_COMMAND = ["flask", "--app", "wsgi", "db", "upgrade"]
# Where the read-only root filesystem needs a writable place: tempfile (request bodies spooled by Werkzeug).
# gunicorn's heartbeat files go to /dev/shm (gunicorn.conf.py), a tmpfs every container runtime provides.
WRITABLE_PATHS = ("/tmp",)
# Kubernetes: seconds the pod keeps serving after it is marked for termination, so the Service stops routing to
# it before gunicorn stops accepting; plus a margin past gunicorn's graceful timeout before SIGKILL.
PRESTOP_SLEEP = 5
KILL_MARGIN = 5
# ECS stops a container with SIGKILL after stopTimeout seconds; Fargate allows at most 120.
ECS_MAX_STOP_TIMEOUT = 120


@dataclass(frozen=True)
class Size:
    """CPU and memory of one process: ECS CPU units (1024 = one vCPU) and MiB."""

    cpu_units: int
    memory_mib: int

    @property
    def cpus(self) -> float:
        return self.cpu_units / 1024

    @property
    def kubernetes(self) -> dict[str, str]:
        return {"cpu": f"{self.cpu_units * 1000 // 1024}m", "memory": f"{self.memory_mib}Mi"}


# A valid Fargate pair each; the connection budget assumes the web size when GUNICORN_WORKERS is 0 (auto).
WEB_SIZE = Size(cpu_units=512, memory_mib=1024)
MIGRATE_SIZE = Size(cpu_units=256, memory_mib=512)

_PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-[a-z])?"
_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d"
SECRETS_MANAGER_ARN = re.compile(
    rf"^arn:{_PARTITION}:secretsmanager:(?P<region>{_REGION}):\d{{12}}:secret:[A-Za-z0-9/_+=.@-]+"
    r"(?::[^:]*:[^:]*:[^:]*)?$"
)
SSM_PARAMETER_ARN = re.compile(rf"^arn:{_PARTITION}:ssm:(?P<region>{_REGION}):\d{{12}}:parameter/[A-Za-z0-9/_.-]+$")
# A parameter name in the task's own region; only a path: a bare word is how other configs name an environment
# variable, and deploying it would fail only when the task starts.
SSM_PARAMETER_PATH = re.compile(r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$")
REGION = re.compile(rf"^{_REGION}$")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*$", re.IGNORECASE)
NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$")
VALID_LOCATIONS = (
    "a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), an SSM parameter ARN "
    "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME) or an SSM parameter path (/app/production/NAME)"
)


@dataclass(frozen=True)
class Plan:
    """What one config deploys: its plain settings and secret locations, checked, plus the image and names."""

    config: Config
    image: str
    name: str
    plain: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, str], ...]
    port: int
    graceful_timeout: int

    @property
    def base(self) -> str:
        return f"{self.name}-{self.config.name}"

    def environment(self, role: str) -> list[tuple[str, str]]:
        """Return the plain settings of a process that connects as ``role``, APPLICATION_CONFIG first."""
        values = [("APPLICATION_CONFIG", self.config.name)]
        values += [(k, role if k == "DATABASE_ROLE" else v) for k, v in self.plain if k != "APPLICATION_CONFIG"]
        if "DATABASE_ROLE" not in dict(self.plain):
            values.append(("DATABASE_ROLE", role))
        return values

    def secrets_for(self, role: str) -> list[tuple[str, str]]:
        """Return the secrets a process connecting as ``role`` gets: never another role's password."""
        others = {password for r, password in ROLE_PASSWORDS.items() if r != role}
        return [(k, v) for k, v in self.secrets if k not in others]


def plan(config: Config, image: str | None, name: str = "app") -> Plan:
    """Check that ``config`` can be deployed with ``image``; raise DeployError with a sentence when not."""
    where = display_path(config.path)
    if not image or not image.strip():
        raise DeployError("No image to deploy: pass --image with the image's repository and tag (REGISTRY/NAME:TAG).")
    if not IMAGE.match(image):
        raise DeployError(f"--image {image!r} is not an image reference like registry.example.com/app:1.2.3.")
    if not NAME.match(name):
        raise DeployError(f"--name {name!r} must be lower-case letters, digits and dashes, starting with a letter.")
    literal = literal_secrets(config)
    if literal:
        raise DeployError(" ".join(literal))
    plain, secrets = [], []
    for item in read_entries(config.path):
        if "valueFrom" in item:
            check_secret_location(where, item["name"], item["valueFrom"])
            secrets.append((item["name"], item["valueFrom"]))
        else:
            plain.append((item["name"], item["value"]))
    values = dict(plain)
    bind = values.get("GUNICORN_BIND", "0.0.0.0:8000")
    port = bind.rpartition(":")[2]
    if not port.isdigit() or not 0 < int(port) < 65536 or bind.startswith(("127.", "localhost")):
        raise DeployError(
            f"{where}: GUNICORN_BIND is {bind!r}; a container must listen on all its addresses, e.g. 0.0.0.0:8000."
        )
    return Plan(
        config=config,
        image=image,
        name=name,
        plain=tuple(plain),
        secrets=tuple(secrets),
        port=int(port),
        graceful_timeout=int(values.get("GUNICORN_GRACEFUL_TIMEOUT", "30")),
    )


def check_secret_location(where: str, name: str, location: str) -> None:
    """Raise DeployError unless ``location`` is somewhere ECS can read a secret from."""
    if SECRETS_MANAGER_ARN.match(location) or SSM_PARAMETER_ARN.match(location) or SSM_PARAMETER_PATH.match(location):
        return
    shown = location if len(location) <= 80 else location[:77] + "..."
    raise DeployError(f"{where}: {name}'s valueFrom {shown!r} is not {VALID_LOCATIONS}.")


def secret_region(plan: Plan) -> str | None:
    """Return the AWS region named by the secrets' ARNs, or None when none is an ARN."""
    for _, location in plan.secrets:
        match = SECRETS_MANAGER_ARN.match(location) or SSM_PARAMETER_ARN.match(location)
        if match:
            return match["region"]
    return None


# -- ECS ------------------------------------------------------------------------------------------


def ecs_task_definitions(plan: Plan, region: str | None = None, execution_role: str | None = None) -> dict:
    """Return RegisterTaskDefinition requests for the web service and the one-off migration, by file stem."""
    region = region or secret_region(plan)
    if not region:
        raise DeployError("No AWS region for the logs: pass --region (the config's secrets name none in an ARN).")
    if not REGION.match(region):
        raise DeployError(f"--region {region!r} is not an AWS region like eu-west-1.")
    if execution_role and not re.match(rf"^arn:{_PARTITION}:iam::\d{{12}}:role/[A-Za-z0-9+=,.@_/-]+$", execution_role):
        raise DeployError(
            f"--execution-role {execution_role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)."
        )
    web = _ecs_container(plan, "web", "app", region)
    web["portMappings"] = [{"name": "http", "containerPort": plan.port, "protocol": "tcp", "appProtocol": "http"}]
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
        "web": _ecs_task(plan, f"{plan.base}-web", web, WEB_SIZE, execution_role),
        "migrate": _ecs_task(plan, f"{plan.base}-migrate", migrate, MIGRATE_SIZE, execution_role),
    }


def _ecs_container(plan: Plan, name: str, role: str, region: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": plan.image,
        "essential": True,
        "user": f"{APP_UID}:{APP_UID}",
        "readonlyRootFilesystem": True,
        "mountPoints": [
            {"sourceVolume": _volume(path), "containerPath": path, "readOnly": False} for path in WRITABLE_PATHS
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


def _ecs_task(plan: Plan, family: str, container: dict, size: Size, execution_role: str | None) -> dict[str, Any]:
    task: dict[str, Any] = {
        "family": family,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": {"operatingSystemFamily": "LINUX"},
        "cpu": str(size.cpu_units),
        "memory": str(size.memory_mib),
        "containerDefinitions": [container],
        # Task storage (Fargate's ephemeral storage), writable while the root filesystem is read-only.
        "volumes": [{"name": _volume(path)} for path in WRITABLE_PATHS],
    }
    if execution_role:
        task["executionRoleArn"] = execution_role
    return task


def _volume(path: str) -> str:
    return path.strip("/").replace("/", "-") or "root"


# -- Kubernetes -----------------------------------------------------------------------------------


def kubernetes_manifests(plan: Plan, replicas: int = 2) -> dict[str, dict]:
    """Return the ConfigMap, Service, Deployment and migration Job, by file stem in the order to apply them."""
    labels = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/instance": plan.config.name}
    web_labels = {**labels, "app.kubernetes.io/component": "web"}
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": plan.base, "labels": labels},
        "data": dict(plan.environment("app")),
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{plan.base}-web", "labels": web_labels},
        "spec": {
            "selector": web_labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    web = _k8s_container(plan, "web", "app", WEB_SIZE)
    web["ports"] = [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}]
    # Ready only when the database answers and its schema is at this image's migration head: a new pod gets no
    # traffic before the migration Job has run, and the old pods keep serving meanwhile (maxUnavailable 0).
    web["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    # Alive means the process answers; a database outage must not restart every pod.
    web["livenessProbe"] = {
        "httpGet": {"path": "/healthz", "port": "http"},
        "initialDelaySeconds": 10,
        "periodSeconds": 10,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    web["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(PRESTOP_SLEEP)]}}}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{plan.base}-web", "labels": web_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": web_labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": web_labels},
                "spec": _k8s_pod(
                    [web], terminationGracePeriodSeconds=PRESTOP_SLEEP + plan.graceful_timeout + KILL_MARGIN
                ),
            },
        },
    }
    migrate = _k8s_container(plan, "migrate", "migration", MIGRATE_SIZE)
    migrate["command"] = MIGRATE_COMMAND
    job_labels = {**labels, "app.kubernetes.io/component": "migrate"}
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        # Named after the image: a Job's pod template cannot change, so each image gets its own migration Job.
        "metadata": {"name": migration_job_name(plan), "labels": job_labels},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 600,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": job_labels},
                "spec": _k8s_pod([migrate], restartPolicy="Never"),
            },
        },
    }
    return {"1-configmap": config_map, "2-migrate-job": job, "3-service": service, "4-deployment": deployment}


def migration_job_name(plan: Plan) -> str:
    """Return the migration Job's name: one per image."""
    return f"{plan.base}-migrate-{hashlib.sha256(plan.image.encode()).hexdigest()[:10]}"


def _k8s_container(plan: Plan, name: str, role: str, size: Size) -> dict[str, Any]:
    environment = dict(plan.environment(role))
    overrides = [{"name": k, "value": v} for k, v in environment.items() if dict(plan.environment("app"))[k] != v]
    secret_refs = [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": plan.base, "key": k}}} for k, _ in plan.secrets_for(role)
    ]
    return {
        "name": name,
        "image": plan.image,
        "envFrom": [{"configMapRef": {"name": plan.base}}],
        "env": overrides + secret_refs,
        "resources": {"requests": size.kubernetes, "limits": size.kubernetes},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": _volume(path), "mountPath": path} for path in WRITABLE_PATHS],
    }


def _k8s_pod(containers: list[dict], **extra: Any) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "fsGroup": APP_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": [{"name": _volume(path), "emptyDir": {"sizeLimit": "64Mi"}} for path in WRITABLE_PATHS],
        **extra,
    }


# -- rendering ------------------------------------------------------------------------------------


def render(
    config: Config,
    target: str,
    image: str | None,
    *,
    name: str = "app",
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


# -- connection budget ----------------------------------------------------------------------------

# PostgreSQL's default max_connections; managed servers derive theirs from memory (`SHOW max_connections`).
DEFAULT_MAX_CONNECTIONS = 100
# superuser_reserved_connections (3 by default) plus room for psql, monitoring and backups.
DEFAULT_RESERVED = 10
# A rolling update runs this many extra replicas at its peak (the Deployment's maxSurge; set the ECS service's
# maximumPercent to match).
DEFAULT_SURGE = 1
# `flask db upgrade` holds one connection while it migrates.
MIGRATION_CONNECTIONS = 1


@dataclass(frozen=True)
class Budget:
    """The database connections a deployment can open at its peak, against what the server allows."""

    replicas: int
    workers: int
    workers_note: str
    pool: int
    surge: int
    max_connections: int
    reserved: int

    @property
    def per_replica(self) -> int:
        return self.workers * self.pool

    def peak(self, replicas: int | None = None) -> int:
        """Return the most connections open at once: during a rolling update, or while the migration runs."""
        n = self.replicas if replicas is None else replicas
        return max((n + self.surge) * self.per_replica, n * self.per_replica + MIGRATION_CONNECTIONS)

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved

    def most_replicas(self) -> int:
        """Return the most replicas whose peak fits (0 when not even one does)."""
        n = 0
        while self.peak(n + 1) <= self.available and n < 100_000:
            n += 1
        return n

    def lines(self) -> list[str]:
        """Describe the arithmetic, one line per step."""
        return [
            f"Workers per replica: {self.workers} ({self.workers_note}).",
            f"Connections per replica: {self.workers} workers x {self.pool} (pool_size + max_overflow) "
            f"= {self.per_replica}.",
            f"Peak: {self.replicas} replicas + {self.surge} during a rolling update, or + the migration's "
            f"{MIGRATION_CONNECTIONS}: {self.peak()} connections.",
            f"Available: max_connections {self.max_connections} - {self.reserved} reserved = {self.available}.",
        ]

    def problems(self) -> list[str]:
        """Return a sentence saying what to change when the peak does not fit; empty when it does."""
        if self.peak() <= self.available:
            return []
        most = self.most_replicas()
        fit = f"run at most {most} replicas" if most else "no replica fits"
        return [
            f"{self.replicas} replicas can open {self.peak()} database connections but the server allows "
            f"{self.available} ({self.max_connections} max_connections - {self.reserved} reserved): {fit}, "
            f"lower GUNICORN_WORKERS (now {self.workers}) or pool_size + max_overflow (now {self.pool}, "
            "project/settings.py), raise the server's max_connections, or put a pooler such as PgBouncer in front."
        ]


def auto_workers(cpus: float) -> int:
    """Return gunicorn's worker count for GUNICORN_WORKERS=0 on ``cpus`` CPUs: 2 x CPUs + 1, counting a
    fraction of a CPU as a whole one (an upper bound, which is what a budget needs)."""
    return 2 * math.ceil(cpus) + 1


def parse_cpus(text: str | None) -> float | None:
    """Return ``--cpus`` as a number, None when absent; raise DeployError when it is not a positive number."""
    if text is None or text == "":
        return None
    try:
        cpus = float(text)
    except ValueError:
        cpus = -1.0
    if not 0 < cpus <= 1024 or math.isnan(cpus):
        raise DeployError(f"--cpus must be a number of CPUs from 0.1 to 1024 such as 0.5 or 2, got {text!r}.")
    return cpus


def budget(
    config: Config,
    replicas: int,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    reserved: int = DEFAULT_RESERVED,
    cpus: float | None = None,
    surge: int = DEFAULT_SURGE,
) -> Budget:
    """Work out ``config``'s connection budget for ``replicas`` replicas."""
    if reserved >= max_connections:
        raise DeployError(
            f"--reserved {reserved} leaves no connection of --max-connections {max_connections}; reserve fewer."
        )
    workers = int(config.get("GUNICORN_WORKERS", "0"))
    if workers:
        note = "GUNICORN_WORKERS"
    else:
        given = cpus is not None
        cpus = cpus if given else WEB_SIZE.cpus
        workers = auto_workers(cpus)
        where = "--cpus" if given else "the rendered web size; pass --cpus for another"
        note = f"GUNICORN_WORKERS=0 means 2 x CPUs + 1; {cpus:g} CPU from {where}"
    options = config_class(config.get("FLASK_CONFIG", "production")).SQLALCHEMY_ENGINE_OPTIONS
    pool = int(options.get("pool_size", 5)) + int(options.get("max_overflow", 10))
    return Budget(replicas, workers, note, pool, surge, max_connections, reserved)
