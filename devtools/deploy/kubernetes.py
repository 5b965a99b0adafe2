"""Kubernetes: the ConfigMap, migration Job, Service and Deployment of a config, each built by a small function."""

from __future__ import annotations

import hashlib
from typing import Any

from devtools.deploy.plan import (
    APP_UID,
    KILL_MARGIN,
    MIGRATE_COMMAND,
    MIGRATE_SIZE,
    WEB_SIZE,
    WRITABLE_PATHS,
    DeployPlan,
    Size,
    volume_name,
)
from project.configuration import ROLE_PASSWORDS

# The Kubernetes version the manifests are written for and validated against (tests/test_deploy.py).
KUBERNETES_VERSION = "1.33.0"
# Seconds the pod keeps serving after it is marked for termination, so the Service stops routing to it before
# gunicorn stops accepting.
PRESTOP_SLEEP = 5


def kubernetes_manifests(plan: DeployPlan, replicas: int) -> dict[str, dict]:
    """Return the ConfigMap, Service, Deployment and migration Job, by file stem in the order to apply them."""
    return {
        "1-configmap": config_map(plan),
        "2-migrate-job": migration_job(plan),
        "3-service": service(plan),
        "4-deployment": deployment(plan, replicas),
    }


def labels(plan: DeployPlan, component: str | None = None) -> dict[str, str]:
    """Return the labels of the config's objects (of one ``component`` of it, when given)."""
    found = {"app.kubernetes.io/name": plan.name, "app.kubernetes.io/instance": plan.config.name}
    return {**found, "app.kubernetes.io/component": component} if component else found


def config_map(plan: DeployPlan) -> dict[str, Any]:
    """Return the ConfigMap of the plain settings every process shares."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": plan.base, "labels": labels(plan)},
        "data": shared_environment(plan),
    }


def shared_environment(plan: DeployPlan) -> dict[str, str]:
    """Return the plain settings that are the same for every role. What differs (DATABASE_ROLE) each container
    sets itself, rather than overriding the ConfigMap: podman kube play lets envFrom win over env."""
    first, *others = (dict(plan.environment(role)) for role in ROLE_PASSWORDS)
    return {k: v for k, v in first.items() if all(other.get(k) == v for other in others)}


def service(plan: DeployPlan) -> dict[str, Any]:
    """Return the Service that routes port 80 to the web pods, inside the cluster only: clients reach it through an
    ingress controller that buffers requests (gunicorn's workers are not to face slow clients)."""
    web_labels = labels(plan, "web")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{plan.base}-web", "labels": web_labels},
        "spec": {
            "type": "ClusterIP",
            "selector": web_labels,
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def web_container(plan: DeployPlan) -> dict[str, Any]:
    """Return the web container: its port, probes and the pause before it stops."""
    web = container(plan, "web", "app", WEB_SIZE)
    web["ports"] = [{"name": "http", "containerPort": plan.port, "protocol": "TCP"}]
    if plan.metrics_port:
        web["ports"].append({"name": "metrics", "containerPort": plan.metrics_port, "protocol": "TCP"})
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
    return web


def deployment(plan: DeployPlan, replicas: int) -> dict[str, Any]:
    """Return the web Deployment, rolled out one surge pod at a time with none unavailable."""
    web_labels = labels(plan, "web")
    grace = PRESTOP_SLEEP + plan.graceful_timeout + KILL_MARGIN
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{plan.base}-web", "labels": web_labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": web_labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": web_labels, **scrape_annotations(plan)},
                "spec": pod([web_container(plan)], terminationGracePeriodSeconds=grace),
            },
        },
    }


def scrape_annotations(plan: DeployPlan) -> dict[str, Any]:
    """Return the annotations that tell an annotation-driven Prometheus where a pod's metrics are (none without)."""
    if not plan.metrics_port:
        return {}
    # The Service routes only http: the metrics port is scraped pod by pod, never exposed through it.
    found = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(plan.metrics_port),
        "prometheus.io/path": "/metrics",
    }
    return {"annotations": found}


def migration_job(plan: DeployPlan) -> dict[str, Any]:
    """Return the Job that runs the migrations as the owner role, once per image."""
    migrate = container(plan, "migrate", "migration", MIGRATE_SIZE)
    migrate["command"] = MIGRATE_COMMAND
    job_labels = labels(plan, "migrate")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        # Named after the image: a Job's pod template cannot change, so each image gets its own migration Job.
        "metadata": {"name": migration_job_name(plan), "labels": job_labels},
        "spec": {
            "backoffLimit": 1,
            "activeDeadlineSeconds": 600,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": job_labels}, "spec": pod([migrate], restartPolicy="Never")},
        },
    }


def migration_job_name(plan: DeployPlan) -> str:
    """Return the migration Job's name: one per image."""
    return f"{plan.base}-migrate-{hashlib.sha256(plan.image.encode()).hexdigest()[:10]}"


def container(plan: DeployPlan, name: str, role: str, size: Size) -> dict[str, Any]:
    """Return a container that connects as ``role``: the ConfigMap, what differs from it, and its secrets."""
    shared = shared_environment(plan)
    own = [{"name": k, "value": v} for k, v in plan.environment(role) if k not in shared]
    secret_refs = [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": plan.base, "key": k}}} for k, _ in plan.secrets_for(role)
    ]
    return {
        "name": name,
        "image": plan.image,
        "envFrom": [{"configMapRef": {"name": plan.base}}],
        "env": own + secret_refs,
        "resources": {"requests": size.kubernetes, "limits": size.kubernetes},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": volume_name(path), "mountPath": path} for path in WRITABLE_PATHS],
    }


def pod(containers: list[dict], **extra: Any) -> dict[str, Any]:
    """Return a pod spec that runs ``containers`` as the image's user, without the API's token."""
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
        "volumes": [{"name": volume_name(path), "emptyDir": {"sizeLimit": "64Mi"}} for path in WRITABLE_PATHS],
        **extra,
    }
