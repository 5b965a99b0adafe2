"""``nox -s rollout``: a rolling deploy under load on a real orchestrator (Docker swarm mode).

Release 1 (three web replicas from ``inv deploy.render swarm``, a database, the compose stack's proxy) serves a
steady load; release 2 (an expand migration, a nullable column, and a code change: a response header) runs its
migration job and rolls web out; then web rolls back to release 1; then a bad release, never ready, must be held
back by the orchestrator while release 1 keeps serving. Prints requests sent, failed, the longest pause and each
step's time, and fails unless no request failed.

Needs a Docker engine in swarm mode (DOCKER_HOST; ``docker swarm init`` on a single machine) with the base
images present; skips with the reason otherwise. Everything it deploys is named ``STACK`` (one per run) and
removed at the end.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.deploy.plan import plan  # noqa: E402
from devtools.deploy.swarm import STACK_VERSION, secret_name, swarm_stacks  # noqa: E402
from devtools.images import DEBIAN_IMAGE, PYTHON_IMAGE, postgres_image  # noqa: E402
from project.configuration import load_config  # noqa: E402
from tests.load_client import Load  # noqa: E402

IMAGES = "rollout"
# A stack of this run's own: swarm removes a stack's network some time after the stack, so a second run under
# the same name can meet the first one's network half-removed.
STACK = f"rollout-{secrets.token_hex(3)}"
SKIP = 3  # exit code the nox session turns into a skip
REPLICAS = 3
CONFIG = "production"
RELEASE_HEADER = """

@app.after_request
def release_header(response):
    response.headers["X-Release"] = "{release}"
    return response
"""
NEVER_READY = """

@app.before_request
def never_ready():
    from flask import request

    if request.path == "/readyz":
        return {"error": "not ready", "status": 503, "message": "This release never gets ready."}, 503
    return None
"""
EXPAND_MIGRATION = '''"""Release 2's expand step: a nullable column on every table, which release 1 ignores."""

import sqlalchemy as sa
from alembic import op

revision = "rollout0002"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade():
    for table in sa.inspect(op.get_bind()).get_table_names():
        if table != "alembic_version":
            op.add_column(table, sa.Column("release_note", sa.Text(), nullable=True))


def downgrade():
    for table in sa.inspect(op.get_bind()).get_table_names():
        if table != "alembic_version":
            op.drop_column(table, "release_note")
'''


def docker(*args: str, input: str | None = None, check: bool = True) -> str:
    done = subprocess.run(["docker", *args], input=input, capture_output=True, text=True)
    if check and done.returncode:
        raise SystemExit(f"docker {' '.join(args[:3])} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def engine_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker command on PATH"
    info = subprocess.run(
        ["docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"],
        capture_output=True,
        text=True,
    )
    if info.returncode:
        return "no Docker engine answers (set DOCKER_HOST, e.g. after ../shared/containers/engine.sh up)"
    if info.stdout.split() != ["active", "true"]:
        return "the engine is not a swarm manager (run: docker swarm init --advertise-addr 127.0.0.1)"
    missing = [i for i in (PYTHON_IMAGE, DEBIAN_IMAGE) if not docker("images", "-q", i).strip()]
    if missing:
        return f"base image {missing[0]} is not present and no registry can be reached"
    return None


def release_tree(workdir: Path, release: str, head: str | None) -> Path:
    """Copy the project's tracked files and change them into ``release``; return the build context."""
    tree = workdir / f"release-{release}"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in filter(None, files.stdout.split("\0")):
        source = ROOT / name
        if source.is_file():
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, tree / name)
    wsgi = tree / "wsgi.py"
    if release == "2":
        wsgi.write_text(wsgi.read_text() + RELEASE_HEADER.format(release=release))
        (tree / "migrations/versions/rollout0002_release_note.py").write_text(EXPAND_MIGRATION.format(head=head))
    elif release == "bad":
        wsgi.write_text(wsgi.read_text() + NEVER_READY)
    return tree


def build(tree: Path, tag: str) -> None:
    docker(
        "build",
        "-q",
        "-f",
        str(tree / "docker/Dockerfile"),
        "--build-arg",
        f"PYTHON_IMAGE={PYTHON_IMAGE}",
        "-t",
        tag,
        str(tree),
    )


def infrastructure(workdir: Path, checked, port: int, postgres: str) -> Path:
    """Write the database's and the proxy's stack file (the environment around the rendered web service)."""
    settings = checked.config
    owner, app = (secret_name(checked, k) for k in ("POSTGRES_MIGRATION_PASSWORD", "POSTGRES_PASSWORD"))
    database = settings.get("POSTGRES_DB", "app")
    exports = (
        'for f in /run/secrets/*; do export "$${f##*/}=$$(cat "$$f")"; done; '
        'export POSTGRES_PASSWORD="$$OWNER_ROLE_PASSWORD"; exec docker-entrypoint.sh postgres'
    )
    documents = {
        "version": STACK_VERSION,
        "services": {
            "db": {
                "image": postgres,
                "entrypoint": ["sh", "-c", exports],
                "environment": {
                    "POSTGRES_USER": "postgres",
                    "POSTGRES_DB": database,
                    "OWNER_ROLE": settings.get("POSTGRES_MIGRATION_USER", "app_owner"),
                    "APP_ROLE": settings.get("POSTGRES_USER", "app"),
                },
                "secrets": [
                    {"source": owner, "target": "OWNER_ROLE_PASSWORD"},
                    {"source": app, "target": "APP_ROLE_PASSWORD"},
                ],
                "volumes": [
                    {
                        "type": "bind",
                        "source": str(ROOT / "docker/postgres"),
                        "target": "/docker-entrypoint-initdb.d",
                        "read_only": True,
                    }
                ],
                # A name with one record per task: swarm's virtual IPs need IPVS, which not every kernel has.
                "deploy": {"endpoint_mode": "dnsrr"},
                "healthcheck": {
                    "test": ["CMD-SHELL", f"pg_isready -U postgres -d {database} -h 127.0.0.1"],
                    "interval": "2s",
                    "retries": 30,
                },
            },
            "proxy": {
                "image": f"{IMAGES}-proxy:1",
                "ports": [{"target": 8080, "published": port, "protocol": "tcp", "mode": "host"}],
            },
        },
        "secrets": {owner: {"external": True}, app: {"external": True}},
    }
    path = workdir / "infrastructure.json"
    path.write_text(json.dumps(documents, indent=2))
    return path


def deploy(path: Path) -> None:
    docker("stack", "deploy", "--detach=true", "--resolve-image", "never", "-c", str(path), STACK)


def wait(what: str, done, seconds: float = 600) -> float:
    """Poll ``done()`` until it is true; return the seconds it took, or stop the run naming ``what``."""
    print(f"waiting for {what}", flush=True)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if done():
            return time.monotonic() - started
        time.sleep(1)
    raise SystemExit(f"{what}: not done after {seconds:.0f} s")


def tasks(service: str) -> list[dict]:
    lines = docker("service", "ps", f"{STACK}_{service}", "--format", "{{json .}}", check=False)
    return [json.loads(line) for line in lines.splitlines() if line.strip()]


def running(service: str, image: str, replicas: int) -> bool:
    """True when ``replicas`` tasks of ``image`` run, healthy, and no other task of the service runs."""
    spec = docker("service", "inspect", f"{STACK}_{service}", "--format", "{{json .}}", check=False)
    if not spec.strip():
        return False
    state = json.loads(spec).get("UpdateStatus", {}).get("State", "completed")
    if state not in ("completed", "rollback_completed", ""):
        return False
    ids = docker("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={STACK}_{service}").split()
    if len(ids) != replicas:
        return False
    found = docker("inspect", "--format", "{{.Config.Image}} {{if .State.Health}}{{.State.Health.Status}}{{end}}", *ids)
    return all(line.split() == [image, "healthy"] for line in found.splitlines())


def update_state(service: str) -> str:
    spec = docker("service", "inspect", f"{STACK}_{service}", "--format", "{{json .UpdateStatus}}", check=False)
    status = json.loads(spec or "null") or {}
    return status.get("State", "")


def container_logs(service: str) -> str:
    """Return the output of the service's containers, stopped ones included."""
    label = f"label=com.docker.swarm.service.name={STACK}_{service}"
    ids = docker("ps", "-aq", "--filter", label, check=False).split()
    done = [subprocess.run(["docker", "logs", i], capture_output=True, text=True) for i in ids]
    return "".join(d.stdout + d.stderr for d in done)


def migrated(image: str) -> bool:
    """True when the migration job of ``image`` completed; stops the run when it failed."""
    for task in tasks("migrate"):
        if task["Image"].split("@")[0] == image and task["CurrentState"].startswith("Complete"):
            return True
        if task["Image"].split("@")[0] == image and task["CurrentState"].startswith(("Failed", "Rejected")):
            logs = container_logs("migrate")
            raise SystemExit(f"the migration job of {image} failed: {task['Error']}\n{logs[-2000:]}")
    return False


def proxy_trouble() -> list[str]:
    """Return the proxy's error lines, its retried or failed requests and its 15 slowest: where pauses come from."""
    found, slow = [], []
    for line in container_logs("proxy").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(line)  # nginx's error log: upstream connect failures, time-outs
            continue
        said = f"{entry['time']} {entry['status']} {entry['duration_s']} s via {entry['upstream']}"
        if "," in entry.get("upstream", "") or entry.get("status", 200) >= 300:
            found.append(said)
        elif float(entry.get("duration_s", 0)) > 0.5:
            slow.append((float(entry["duration_s"]), said))
    return found + [said for _, said in sorted(slow, reverse=True)[:15]]


def web_timeline() -> list[str]:
    """Return each web container's start and stop (UTC), address and image, to match against the proxy's log."""
    label = f"label=com.docker.swarm.service.name={STACK}_web"
    ids = docker("ps", "-aq", "--filter", label, check=False).split()
    form = "{{.State.StartedAt}} {{.State.FinishedAt}} {{.Config.Image}} "
    form += '{{index .Config.Labels "com.docker.swarm.task.id"}}'
    found = []
    for line in docker("inspect", "--format", form, *ids, check=False).splitlines() if ids else []:
        started, stopped, image, task = (line.split() + [""] * 4)[:4]
        # A stopped container has left its network; its task still names the address it had.
        where = "{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}"
        address = docker("inspect", "--format", where, task, check=False).split() if task else []
        stopped = stopped[11:19] if not stopped.startswith("0001") else "running"
        found.append(f"{started[11:19]} to {stopped:8} {' '.join(address) or '-':14} {image}")
    return sorted(found)


def tasks_now(service: str) -> list[str]:
    """Return the service's tasks as swarm states them: desired and current state, image, error."""
    form = "{{.Name}} {{.Image}} desired {{.DesiredState}}, {{.CurrentState}} {{.Error}}"
    return docker("service", "ps", "--no-trunc", f"{STACK}_{service}", "--format", form, check=False).splitlines()


def remove_stack() -> None:
    """Remove the stack, its stopped containers and its network, waiting (within bounds) until they are gone."""
    docker("stack", "rm", STACK, check=False)
    label = f"label=com.docker.stack.namespace={STACK}"
    for _ in range(120):
        if not docker("ps", "-q", "--filter", label, check=False).strip():
            break
        time.sleep(1)
    stopped = docker("ps", "-aq", "--filter", label, check=False).split()
    if stopped:
        docker("rm", *stopped, check=False)
    for _ in range(30):  # the network goes once its last endpoint has
        if f"{STACK}_default" not in docker("network", "ls", "--format", "{{.Name}}", check=False).split():
            return
        docker("network", "rm", f"{STACK}_default", check=False)
        time.sleep(1)
    print(f"the network {STACK}_default is still there; see docker network inspect {STACK}_default")


def release(workdir: Path, config, image: str) -> dict[str, Path]:
    """Render ``image``'s stack files with the swarm target; return them by stem."""
    documents = swarm_stacks(plan(config, image, name=STACK), REPLICAS)
    paths = {}
    for stem, document in documents.items():
        paths[stem] = workdir / f"{image.replace(':', '-')}-{stem}.json"
        paths[stem].write_text(json.dumps(document, indent=2))
    return paths


def roll(workdir: Path, config, image: str) -> float:
    """Run ``image``'s migration job, then roll web to it; return the seconds both took."""
    files = release(workdir, config, image)
    started = time.monotonic()
    deploy(files["1-migrate"])
    wait(f"migration job of {image}", lambda: migrated(image))
    deploy(files["2-web"])
    wait(f"web on {image}", lambda: running("web", image, REPLICAS))
    return time.monotonic() - started


def run(workdir: Path, config, checked, port: int, steps: dict, began: dict, loads: list) -> bool:
    """Build, deploy release 1, roll to 2 and back under load, then a bad release; True if release 1 held."""
    started = time.monotonic()
    from project.revisions import code_head

    head = code_head(ROOT / "migrations")
    for name in ("1", "2", "bad"):
        build(release_tree(workdir, name, head), f"{IMAGES}-web:{name}")
    proxy_build = ("build", "-q", "--build-arg", f"DEBIAN_IMAGE={DEBIAN_IMAGE}", "-t", f"{IMAGES}-proxy:1")
    docker(*proxy_build, str(ROOT / "docker/proxy"))
    steps["build three releases and the proxy"] = time.monotonic() - started
    for setting, _ in checked.secrets:
        docker("secret", "rm", secret_name(checked, setting), check=False)
        docker("secret", "create", secret_name(checked, setting), "-", input=secrets.token_urlsafe(32))
    started = time.monotonic()
    postgres = postgres_image(config["POSTGRES_MAJOR_VERSION"])
    deploy(infrastructure(workdir, checked, port, postgres))
    wait("the database", lambda: running("db", postgres, 1), 180)
    steps["deploy release 1"] = roll(workdir, config, f"{IMAGES}-web:1") + time.monotonic() - started
    wait("the proxy", lambda: running("proxy", f"{IMAGES}-proxy:1", 1), 120)
    load = Load(f"http://127.0.0.1:{port}/readyz")
    loads.append(load)
    load.start()
    time.sleep(5)
    began["migrate and roll out release 2"] = time.monotonic() - load.started
    steps["migrate and roll out release 2"] = roll(workdir, config, f"{IMAGES}-web:2")
    time.sleep(5)
    rollback = release(workdir, config, f"{IMAGES}-web:1")["2-web"]
    started = time.monotonic()
    began["roll back to release 1"] = started - load.started
    deploy(rollback)
    wait("web back on release 1", lambda: running("web", f"{IMAGES}-web:1", REPLICAS))
    steps["roll back to release 1"] = time.monotonic() - started
    time.sleep(5)
    started = time.monotonic()
    began["bad release held back"] = started - load.started
    deploy(release(workdir, config, f"{IMAGES}-web:bad")["2-web"])
    wait("the bad release rolled back", lambda: update_state("web") == "rollback_completed", 300)
    steps["bad release held back"] = time.monotonic() - started
    held = running("web", f"{IMAGES}-web:1", REPLICAS)
    time.sleep(5)
    return held


def main() -> int:
    problem = engine_problem()
    if sys.argv[1:] == ["--check"]:
        print(problem or "")
        return 0
    if problem:
        print(f"rollout skipped: {problem}.")
        return SKIP
    config = load_config(CONFIG, require_secrets=False)
    checked = plan(config, f"{IMAGES}-web:1", name=STACK)
    workdir = Path(tempfile.mkdtemp(prefix=f"{STACK}-"))
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    steps: dict[str, float] = {}
    began: dict[str, float] = {}  # when each step under load began, in seconds into the load
    loads: list[Load] = []
    failure, held = "", False
    try:
        try:
            held = run(workdir, config, checked, port, steps, began, loads)
        except SystemExit as exc:  # a step that did not finish: still report what the load and the proxy saw
            failure = str(exc)
        report = loads[0].stop() if loads else None
        trouble, timeline = proxy_trouble(), web_timeline()
        if failure:
            timeline += tasks_now("web")
    finally:
        for load in loads:
            load.stop()
        remove_stack()
        for setting, _ in checked.secrets:
            docker("secret", "rm", secret_name(checked, setting), check=False)
        shutil.rmtree(workdir, ignore_errors=True)
    for step, seconds in steps.items():
        print(f"{step:40} {seconds:6.1f} s" + (f" (from {began[step]:.1f} s into the load)" if step in began else ""))
    if report:
        print(report.summary())
    if trouble:
        print("the proxy's errors, and its requests that were slow, retried or not 2xx:")
        print("\n".join(f"  {line}" for line in trouble[:60]))
    print("web containers (started, stopped, address, image; UTC), and the tasks when a step failed:")
    print("\n".join(f"  {line}" for line in timeline))
    if failure:
        print(f"FAILED: {failure}")
        return 1
    print(f"after the bad release: {'release 1 still serves on every replica' if held else 'NOT release 1'}")
    return 0 if report.failed == 0 and held and report.releases.get("2") else 1


if __name__ == "__main__":
    sys.exit(main())
