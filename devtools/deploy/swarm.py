"""Docker swarm: the stack files of a config, the migration as a one-off job and the web service rolled out
health-gated, one replica at a time, the new one started before an old one stops, rolled back on failure.

Two documents, deployed in order under one stack name (``docker stack deploy -c FILE STACK``): the migration
job first (wait until it completes), then the web service. The database and the proxy are not in them: they
belong to the environment, as they do on ECS and Kubernetes.

Swarm hands secrets to a container as files under ``/run/secrets``; the app reads its settings from the
environment, so each process starts through a small shell step that exports its own secret files (named after
the setting) and then replaces itself with the real command. The stack files name the secrets only.
"""

from __future__ import annotations

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
)

# The compose-file version `docker stack deploy` reads (a stack ignores compose's newer unversioned format).
STACK_VERSION = "3.9"
WEB_COMMAND = ["gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
# Written with $$ for each $: a stack file interpolates $NAME from the deploying shell's environment.
EXPORT_SECRETS = 'for f in /run/secrets/*; do [ -f "$$f" ] && export "$${f##*/}=$$(cat "$$f")"; done; '
# Swarm has no preStop: on SIGTERM the web replica keeps serving DRAIN_SECONDS more, while swarm's DNS and the
# proxies' resolvers (nginx asks every 2 s) forget it, and only then passes the signal on to gunicorn.
DRAIN_SECONDS = 7
# The trap is set before the command starts, so a SIGTERM that comes as soon as it runs still waits for the drain.
RUN_DRAINED = (
    'trap \'stopping=1; sleep {drain}; kill -TERM "$$!"\' TERM INT; "$$@" & '
    'wait "$$!"; status=$$?; [ -n "$$stopping" ] && {{ wait "$$!"; status=$$?; }}; exit "$$status"'
)
# Ready means the database answers and the schema is at this image's head: a new replica takes traffic only
# then, and an update whose replicas never get there is rolled back.
READY_CHECK = (
    "import urllib.request,sys; "
    "sys.exit(urllib.request.urlopen('http://127.0.0.1:{port}/readyz', timeout=2).status != 200)"
)


def swarm_stacks(plan: DeployPlan, replicas: int) -> dict[str, dict]:
    """Return the migration job's stack file and the web service's, by file stem in the order to deploy them."""
    return {
        "1-migrate": stack({"migrate": migration_job(plan)}, plan, "migration"),
        "2-web": stack({"web": web_service(plan, replicas)}, plan, "app"),
    }


def secret_name(plan: DeployPlan, setting: str) -> str:
    """Return the swarm secret that holds ``setting``: ``docker secret create NAME -`` makes it."""
    return f"{plan.base}-{setting.lower().replace('_', '-')}"


def stack(services: dict[str, dict], plan: DeployPlan, role: str) -> dict[str, Any]:
    """Return a stack file of ``services`` and the external secrets a process connecting as ``role`` reads."""
    return {
        "version": STACK_VERSION,
        "services": services,
        "secrets": {secret_name(plan, k): {"external": True} for k, _ in plan.secrets_for(role)},
    }


def process(plan: DeployPlan, role: str, command: list[str], size: Size) -> dict[str, Any]:
    """Return a service that connects as ``role``: the image, settings, secrets, limits and no root."""
    return {
        "image": plan.image,
        "entrypoint": ["sh", "-c", EXPORT_SECRETS + 'exec "$$@"', "export-secrets"],
        "command": command,
        "environment": dict(plan.environment(role)),
        "secrets": [
            {"source": secret_name(plan, k), "target": k, "uid": str(APP_UID), "gid": str(APP_UID), "mode": 0o400}
            for k, _ in plan.secrets_for(role)
        ],
        "user": f"{APP_UID}:{APP_UID}",
        "read_only": True,
        # A mount, not `tmpfs:`, which a stack deploy ignores; 1777 as a /tmp is.
        "volumes": [{"type": "tmpfs", "target": path, "tmpfs": {"size": 64 * 1024 * 1024}} for path in WRITABLE_PATHS],
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "logging": {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}},
        "deploy": {"resources": {"limits": {"cpus": f"{size.cpus:g}", "memory": f"{size.memory_mib}M"}}},
    }


def migration_job(plan: DeployPlan) -> dict[str, Any]:
    """Return the one-off migration: runs once as the owner role, is not restarted after it succeeds."""
    service = process(plan, "migration", MIGRATE_COMMAND, MIGRATE_SIZE)
    service["deploy"] |= {
        "mode": "replicated-job",
        "restart_policy": {"condition": "on-failure", "max_attempts": 1},
    }
    return service


def web_service(plan: DeployPlan, replicas: int) -> dict[str, Any]:
    """Return the web service: replaced one replica at a time, health-gated, rolled back when one fails."""
    service = process(plan, "app", WEB_COMMAND, WEB_SIZE)
    service["healthcheck"] = {
        "test": ["CMD", "python", "-c", READY_CHECK.format(port=plan.port)],
        "interval": "3s",
        "timeout": "5s",
        "retries": 3,
        # Failures while starting do not count, and the first success ends the wait: generous costs nothing.
        "start_period": "120s",
    }
    service["entrypoint"][2] = EXPORT_SECRETS + RUN_DRAINED.format(drain=DRAIN_SECONDS)
    service["stop_grace_period"] = f"{DRAIN_SECONDS + plan.graceful_timeout + KILL_MARGIN}s"
    one_at_a_time = {"parallelism": 1, "order": "start-first", "monitor": "10s", "delay": "2s"}
    service["deploy"] |= {
        "replicas": replicas,
        # Proxies find the replicas by name (one DNS record each), not through a virtual IP.
        "endpoint_mode": "dnsrr",
        "update_config": one_at_a_time | {"failure_action": "rollback", "max_failure_ratio": 0},
        "rollback_config": one_at_a_time | {"failure_action": "pause"},
        "restart_policy": {"condition": "any", "delay": "2s"},
    }
    return service
