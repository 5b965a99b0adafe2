"""What one config deploys, checked once for every target: the image, the names, the plain settings and the
secrets' locations, and the sizes of the two processes (the web service and the one-off migration).

What the renders carry comes from one config file: its plain values become the containers' environment, its
``valueFrom`` entries become references to secrets that live elsewhere, never values. Each process gets only the
database password of the role it connects as (``DATABASE_ROLE``): the web service the app role's, the
migration the owner role's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devtools.errors import DeployError
from devtools.identity import project_name
from project.configuration import ROLE_PASSWORDS, Config, display_path, read_entries
from project.deploy_checks import literal_secrets

# The image's user (docker/Dockerfile): the renders never run the app as root.
APP_UID = 10001
MIGRATE_COMMAND = ["flask", "--app", "wsgi", "db", "upgrade"]
# Where the read-only root filesystem needs a writable place: tempfile (request bodies spooled by Werkzeug).
# gunicorn's heartbeat files go to /dev/shm (gunicorn.conf.py), a tmpfs every container runtime provides.
WRITABLE_PATHS = ("/tmp",)
# Seconds past gunicorn's graceful timeout before a container is killed.
KILL_MARGIN = 5


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

PARTITION = r"aws(?:-cn|-us-gov|-iso|-iso-[a-z])?"
REGION_PATTERN = r"[a-z]{2}(?:-[a-z]+)+-[0-9]"
SECRETS_MANAGER_ARN = re.compile(
    rf"^arn:{PARTITION}:secretsmanager:(?P<region>{REGION_PATTERN}):[0-9]{{12}}:secret:[A-Za-z0-9/_+=.@-]+"
    r"(?::[^:]*:[^:]*:[^:]*)?\Z"
)
SSM_PARAMETER_ARN = re.compile(
    rf"^arn:{PARTITION}:ssm:(?P<region>{REGION_PATTERN}):[0-9]{{12}}:parameter/[A-Za-z0-9/_.-]+\Z"
)
# A parameter name in the task's own region; only a path: a bare word is how other configs name an environment
# variable, and deploying it would fail only when the task starts.
SSM_PARAMETER_PATH = re.compile(r"^/[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*\Z")
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]*\Z", re.IGNORECASE)
NAME = re.compile(r"^[a-z]([a-z0-9-]{0,30}[a-z0-9])?\Z")
VALID_LOCATIONS = (
    "a Secrets Manager ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), an SSM parameter ARN "
    "(arn:aws:ssm:REGION:ACCOUNT:parameter/NAME) or an SSM parameter path (/app/production/NAME)"
)


@dataclass(frozen=True)
class DeployPlan:
    """What one config deploys: its plain settings and secret locations, checked, plus the image and names."""

    config: Config
    image: str
    name: str
    plain: tuple[tuple[str, str], ...]
    secrets: tuple[tuple[str, str], ...]
    port: int
    graceful_timeout: int
    metrics_port: int | None = None  # where gunicorn's master serves /metrics (METRICS_BIND); None: no endpoint

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


def plan(config: Config, image: str | None, name: str | None = None) -> DeployPlan:
    """Check that ``config`` can be deployed with ``image`` under ``name`` (default: the project's name); raise
    DeployError with a sentence when not."""
    name = project_name() if name is None else name
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
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536 or bind.startswith(("127.", "localhost")):
        raise DeployError(
            f"{where}: GUNICORN_BIND is {bind!r}; a container must listen on all its addresses, e.g. 0.0.0.0:8000."
        )
    if values.get("PROXY_FIX_X_FOR", "0") == "0":
        # A sync worker reads a request's headers itself: a few clients sending them slowly hold every worker.
        raise DeployError(
            f"{where}: PROXY_FIX_X_FOR is 0, meaning clients reach gunicorn directly, whose workers a few slow "
            "clients can hold; deploy it behind a proxy that buffers requests (a load balancer, ingress-nginx) and "
            "set PROXY_FIX_X_FOR to the number of proxies (1 for one)."
        )
    return DeployPlan(
        config=config,
        image=image,
        name=name,
        plain=tuple(plain),
        secrets=tuple(secrets),
        port=int(port),
        graceful_timeout=int(values.get("GUNICORN_GRACEFUL_TIMEOUT", "30")),
        metrics_port=metrics_port(where, values.get("METRICS_BIND", ""), int(port)),
    )


def metrics_port(where: str, bind: str, app_port: int) -> int | None:
    """Return the port of a container's metrics endpoint (None without one); refuse one no scraper could reach."""
    if not bind:
        return None
    port = int(bind.rpartition(":")[2])
    if bind.startswith(("127.", "localhost", "[::1]")) or port == app_port:
        raise DeployError(
            f"{where}: METRICS_BIND is {bind!r}; in a container it must listen on all its addresses on a port of its "
            f"own, e.g. 0.0.0.0:9464 (or be empty for no metrics endpoint)."
        )
    return port


def check_secret_location(where: str, name: str, location: str) -> None:
    """Raise DeployError unless ``location`` is somewhere ECS can read a secret from."""
    if SECRETS_MANAGER_ARN.match(location) or SSM_PARAMETER_ARN.match(location) or SSM_PARAMETER_PATH.match(location):
        return
    shown = location if len(location) <= 80 else location[:77] + "..."
    raise DeployError(f"{where}: {name}'s valueFrom {shown!r} is not {VALID_LOCATIONS}.")


def volume_name(path: str) -> str:
    """Return the name of the writable volume mounted at ``path``."""
    return path.strip("/").replace("/", "-") or "root"
