"""``nox -s podman``: the rendered Kubernetes Deployment run by ``podman kube play``, a real pod on this machine.

The app image (built from this checkout by the Docker engine, then loaded into podman) and a PostgreSQL of the
config's major run on a podman network of their own. The migration Job's pod template runs first, as a Pod
(podman plays no Job), then the ConfigMap and the Deployment as rendered. The pod must serve ``/healthz`` and
``/readyz`` (the database answers with the app role's secret password, the schema is at the image's head), see
every setting of the ConfigMap and every secret it references, run as uid 10001 on a read-only root with the
rendered memory limit. What podman does not run (the Job as such, the Service, the probes, the preStop hook) is
printed as "not run", never counted as passed.

Needs root, podman with runc and catatonit, and a Docker engine (DOCKER_HOST) holding the base images, since no
registry can be reached; skips with the reason otherwise. All podman state (storage, networks, secrets) lives
in a private temporary directory, removed at the end with everything the run made.
"""

from __future__ import annotations

import base64
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.deploy import rendering  # noqa: E402
from devtools.deploy.plan import APP_UID, WEB_SIZE  # noqa: E402
from devtools.images import PYTHON_IMAGE, postgres_image  # noqa: E402
from project.configuration import load_config  # noqa: E402

SKIP = 3  # exit code the nox session turns into a skip
CONFIG = "production"
NAME = f"rollout-{secrets.token_hex(3)}"  # the deploy name: every pod, image, network and secret starts with it
PLAYED = ("ConfigMap", "Deployment")  # the kinds this smoke hands to podman kube play as rendered
TOOLS = ("podman", "runc", "catatonit")


def engine_problem(config) -> str | None:
    """Return why the smoke cannot run here, or None."""
    if os.geteuid() != 0:
        return "podman kube play runs rootful here: run it as root"
    missing = [tool for tool in TOOLS if not shutil.which(tool) and not Path(f"/usr/libexec/podman/{tool}").exists()]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: apt-get install podman runc catatonit)"
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return "no Docker engine answers to build the image from (set DOCKER_HOST; no registry can be reached)"
    for image in (PYTHON_IMAGE, postgres_image(config["POSTGRES_MAJOR_VERSION"])):
        if not subprocess.run(["docker", "images", "-q", image], capture_output=True, text=True).stdout.strip():
            return f"base image {image} is not in the Docker engine and no registry can be reached"
    return None


class Podman:
    """podman with its storage, networks, secrets and runtime settings under ``state``, a private directory."""

    def __init__(self, state: Path):
        self.state = state
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        # podman raises the containers' limits above the caller's by default, which needs CAP_SYS_RESOURCE; keep
        # them within the caller's (nproc counts per user: the app's and the database's users are their own).
        settings = f"""[containers]
default_ulimits = ["nofile={nofile}:{nofile}", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{state / "tmp"}"
[network]
network_config_dir = "{state / "networks"}"
"""
        (state / "containers.conf").write_text(settings)
        # Not the Docker client's settings: podman would read its registry logins from DOCKER_CONFIG.
        kept = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "CONTAINERS_", "REGISTRY_"))}
        self.env = {**kept, "CONTAINERS_CONF": str(state / "containers.conf")}

    def __call__(self, *args: str, input: bytes | str | None = None, check: bool = True, stdin=None) -> str:
        command = ["podman", "--root", str(self.state / "root"), "--runroot", str(self.state / "run"), *args]
        data = input.encode() if isinstance(input, str) else input
        done = subprocess.run(command, input=data, stdin=stdin, capture_output=True, env=self.env)
        out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
        if check and done.returncode:
            raise SystemExit(f"podman {' '.join(args[:2])} failed: {err.strip() or out.strip()}")
        return out

    def load(self, image: str) -> None:
        """Copy ``image`` from the Docker engine into this podman's storage."""
        saver = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        self("load", stdin=saver.stdout)
        if saver.wait():
            raise SystemExit(f"docker save {image} failed")

    def logs(self, container: str) -> str:
        """Return the end of ``container``'s output, stdout and stderr."""
        command = ["podman", "--root", str(self.state / "root"), "--runroot", str(self.state / "run"), "logs"]
        done = subprocess.run([*command, container], capture_output=True, text=True, env=self.env)
        return (done.stdout + done.stderr)[-3000:]

    def inspect(self, name: str) -> dict:
        return json.loads(self("inspect", name))[0]

    def reset(self) -> None:
        """Remove everything this podman made, then its state directory."""
        self("pod", "rm", "--all", "--force", check=False)
        self("rm", "--all", "--force", check=False)
        self("system", "reset", "--force", check=False)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        for mount in sorted((m for m in mounts if m.startswith(str(self.state))), reverse=True):
            subprocess.run(["umount", mount], capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


def kube_file(path: Path, documents: list[dict]) -> Path:
    path.write_text("\n---\n".join(json.dumps(document) for document in documents))
    return path


def job_as_pod(job: dict) -> dict:
    """Return the migration Job's pod template as a Pod, which podman can play."""
    template = job["spec"]["template"]
    metadata = {"name": job["metadata"]["name"], "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def start_database(podman: Podman, config, network: str, passwords: dict[str, str]) -> None:
    """Start the config's PostgreSQL on ``network`` as host ``POSTGRES_HOST``, with the project's two roles."""
    owner, app = f"{NAME}-owner-password", f"{NAME}-app-password"
    podman("secret", "create", owner, "-", input=passwords["POSTGRES_MIGRATION_PASSWORD"])
    podman("secret", "create", app, "-", input=passwords["POSTGRES_PASSWORD"])
    podman(
        *("run", "--detach", "--name", f"{NAME}-db", "--network", network),
        *("--network-alias", config["POSTGRES_HOST"]),
        *("--secret", f"{owner},type=env,target=POSTGRES_PASSWORD"),
        *("--secret", f"{owner},type=env,target=OWNER_ROLE_PASSWORD"),
        *("--secret", f"{app},type=env,target=APP_ROLE_PASSWORD"),
        *("--env", "POSTGRES_USER=postgres", "--env", f"POSTGRES_DB={config['POSTGRES_DB']}"),
        *("--env", f"OWNER_ROLE={config['POSTGRES_MIGRATION_USER']}", "--env", f"APP_ROLE={config['POSTGRES_USER']}"),
        *("--volume", f"{ROOT / 'docker/postgres'}:/docker-entrypoint-initdb.d:ro"),
        f"localhost/{postgres_image(config['POSTGRES_MAJOR_VERSION'])}",
    )
    database = f"--dbname={config['POSTGRES_DB']}"
    check = ("exec", f"{NAME}-db", "pg_isready", "--host=127.0.0.1", "--username=postgres", database)
    wait("the database", lambda: podman(*check, check=False).strip().endswith("accepting connections"))


def wait(what: str, done, seconds: float = 180) -> None:
    print(f"waiting for {what}", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(1)
    raise SystemExit(f"{what}: not done after {seconds:.0f} s")


def migrate(podman: Podman, workdir: Path, configmap: dict, job: dict) -> str:
    """Run the migration Job's pod template; return what it did, or stop the run when it failed."""
    pod = job_as_pod(job)
    podman("kube", "play", "--network", NETWORK, str(kube_file(workdir / "migrate.yaml", [configmap, pod])))
    container = f"{pod['metadata']['name']}-{pod['spec']['containers'][0]['name']}"
    wait("the migration", lambda: podman.inspect(container)["State"]["Status"] == "exited", 300)
    code = podman.inspect(container)["State"]["ExitCode"]
    if code:
        raise SystemExit(f"the migration pod exited with {code}:\n{podman.logs(container)}")
    return f"its pod template ran as Pod {pod['metadata']['name']}, exit 0"


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def pod_address(podman: Podman, pod: str) -> str:
    infra = podman.inspect(podman.inspect(pod)["InfraContainerID"])
    return infra["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]


def check_web(podman: Podman, container: str, address: str, expected: dict[str, str]) -> list[tuple[bool, str]]:
    """Return (passed, what) for each promise the rendered Deployment makes about the running web container."""
    results = []
    for path in ("/healthz", "/readyz"):
        url = f"http://{address}:{expected['GUNICORN_BIND'].rsplit(':', 1)[1]}{path}"
        deadline = time.monotonic() + 120
        while (status := get(url)) != 200 and time.monotonic() < deadline:
            time.sleep(1)
        results.append((status == 200, f"GET {path} from outside the pod: {status or 'no answer'}"))
    seen = json.loads(podman("exec", container, "python", "-c", "import json, os; print(json.dumps(dict(os.environ)))"))
    wrong = sorted(k for k, v in expected.items() if seen.get(k) != v)
    results.append((not wrong, f"{len(expected)} settings and secrets in its environment, as rendered and stored"))
    if wrong:
        results.append((False, f"  differ or missing: {', '.join(wrong)}"))
    uid = podman("exec", container, "id", "-u").strip()
    results.append((uid == str(APP_UID), f"runs as uid {uid} (runAsUser {APP_UID}, runAsNonRoot)"))
    state = podman.inspect(container)
    root = podman("exec", container, "sh", "-c", "touch /smoke-probe 2>&1; touch /tmp/smoke-probe && echo /tmp ok")
    read_only = state["HostConfig"]["ReadonlyRootfs"] and "Read-only file system" in root and "/tmp ok" in root
    results.append((read_only, "read-only root filesystem, /tmp writable (the emptyDir)"))
    memory = state["HostConfig"]["Memory"]
    limit = podman("exec", container, "sh", "-c", MEMORY_LIMIT).strip()
    wanted = WEB_SIZE.memory_mib * 2**20
    results.append((memory == wanted == int(limit), f"memory limit {memory // 2**20} MiB, {limit} in its cgroup"))
    results.append((not state["EffectiveCaps"], f"capabilities: {state['EffectiveCaps'] or 'none'}"))
    return results


# The container's memory limit as its cgroup states it, cgroup v2 or v1.
MEMORY_LIMIT = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"


def not_run(podman: Podman, manifests: dict[str, dict], container: str, migration: str) -> list[str]:
    """Return what the manifests ask for that podman does not run, each with what the smoke did instead."""
    lines = []
    for document in manifests.values():
        kind, name = document["kind"], document["metadata"]["name"]
        if kind == "Job":
            lines.append(f"Job {name}: not run (podman kube play plays no Job); {migration}")
        elif kind not in PLAYED:
            lines.append(f"{kind} {name}: not run (podman kube play plays no {kind}); the smoke asked the pod itself")
    lines.append("readinessProbe: not run (podman 4.3 ignores it); the smoke asked /readyz itself")
    check = podman.inspect(container)["Config"].get("Healthcheck") or {}
    ran = podman("healthcheck", "run", container, check=False) if check else ""
    made = " ".join(check.get("Test", [])) or "nothing"
    lines.append(f"livenessProbe: not run (podman made it the healthcheck `{made}`, scheduled by systemd, which")
    lines.append(f"  does not run here; run once by hand it says: {ran.strip() or 'failed'})")
    lines.append("lifecycle.preStop: not run (the smoke removes the pod, it does not drain it)")
    return lines


def build(image: str) -> None:
    build_args = ("--build-arg", f"PYTHON_IMAGE={PYTHON_IMAGE}")
    done = subprocess.run(
        ["docker", "build", "-q", "-f", str(ROOT / "docker/Dockerfile"), *build_args, "-t", image, str(ROOT)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"docker build failed: {done.stderr.strip()[-2000:]}")


def smoke(podman: Podman, workdir: Path, config) -> int:
    """Run the manifests; print what passed, what failed and what podman does not run; return the exit code."""
    image = f"{NAME}-web:smoke"
    manifests = rendering.render(config, "kubernetes", f"localhost/{image}", name=NAME, replicas=1)
    configmap, job, deployment = (manifests[k] for k in ("1-configmap", "2-migrate-job", "4-deployment"))
    base = configmap["metadata"]["name"]
    stored = {key: secrets.token_urlsafe(48) for key in config.secrets()}
    print(f"building {image} and loading it and {postgres_image(config['POSTGRES_MAJOR_VERSION'])} into podman")
    build(image)
    try:
        podman.load(image)
    finally:
        subprocess.run(["docker", "rmi", image], capture_output=True)
    podman.load(postgres_image(config["POSTGRES_MAJOR_VERSION"]))
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in stored.items()}
    podman("secret", "create", base, "-", input=json.dumps(encoded))  # what secretKeyRef reads in podman 4.3
    podman("network", "create", NETWORK)
    start_database(podman, config, NETWORK, stored)
    migration = migrate(podman, workdir, configmap, job)
    podman("kube", "play", "--network", NETWORK, str(kube_file(workdir / "web.yaml", [configmap, deployment])))
    pod = f"{deployment['metadata']['name']}-pod-0"
    container = f"{pod}-{deployment['spec']['template']['spec']['containers'][0]['name']}"
    secret_keys = [
        e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"] if "valueFrom" in e
    ]
    expected = {**configmap["data"], **{key: stored[key] for key in secret_keys}}
    results = check_web(podman, container, pod_address(podman, pod), expected)
    for passed, what in results:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")
    for line in not_run(podman, manifests, container, migration):
        print(f"NOT RUN  {line}" if not line.startswith("  ") else f"         {line}")
    if not all(passed for passed, _ in results):
        print(podman.logs(container))
        return 1
    return 0


def main() -> int:
    config = load_config(CONFIG, require_secrets=False)
    problem = engine_problem(config)
    if sys.argv[1:] == ["--check"]:
        print(problem or "")
        return 0
    if problem:
        print(f"podman smoke skipped: {problem}.")
        return SKIP
    workdir = Path(tempfile.mkdtemp(prefix=f"{NAME}-"))
    for part in ("root", "run", "tmp", "networks"):
        (workdir / "podman" / part).mkdir(parents=True)
    podman = Podman(workdir / "podman")
    started = time.monotonic()
    try:
        code = smoke(podman, workdir, config)
    finally:
        podman.reset()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


NETWORK = f"{NAME}-net"

if __name__ == "__main__":
    sys.exit(main())
