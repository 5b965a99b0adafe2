"""Deploy renders checked by the engines' own schemas (botocore's ECS model, kubernetes-validate), their refusals,
the connection budget, and the README's Terraform snippet run through the real terraform."""

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess

import pytest

from devtools.deploy import kubernetes, plan, rendering
from devtools.errors import DeployError
from project.configuration import load_config
from tests.helpers import ROOT, STRONG, one_sentence
from tests.helpers import inv as run_inv

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1.4.2"
ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/production/"


def production():
    return load_config("production", environ={}, require_secrets=False)


def config_with(tmp_path, **changes):
    """Return the production config with some entries' contents replaced (``{"value": ...}`` or ``{"valueFrom":
    ...}``), read from a copy in ``tmp_path``."""
    entries = json.loads((ROOT / "config" / "production.json").read_text())
    entries = [{"name": e["name"], **changes[e["name"]]} if e["name"] in changes else e for e in entries]
    known = {e["name"] for e in entries}
    entries += [{"name": name, **change} for name, change in changes.items() if name not in known]
    (tmp_path / "production.json").write_text(json.dumps(entries))
    return load_config("production", environ={}, config_dir=tmp_path, require_secrets=False)


def env_of(container):
    """Return a container's plain environment as a dict, for ECS and Kubernetes shapes alike."""
    return {e["name"]: e["value"] for e in container.get("environment", container.get("env", [])) if "value" in e}


# -- ECS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def register_task_definition():
    botocore_session = pytest.importorskip("botocore.session")
    model = botocore_session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def test_ecs_task_definitions_pass_botocores_register_task_definition_validator(register_task_definition):
    from botocore.validate import validate_parameters

    definitions = rendering.render(production(), "ecs", IMAGE)
    assert set(definitions) == {"web", "migrate"}
    for definition in definitions.values():
        validate_parameters(definition, register_task_definition)


def test_botocore_validator_would_catch_a_wrong_shape(register_task_definition):
    from botocore.exceptions import ParamValidationError
    from botocore.validate import validate_parameters

    definition = rendering.render(production(), "ecs", IMAGE)["web"]
    definition["cpu"] = 512  # ECS wants a string
    with pytest.raises(ParamValidationError):
        validate_parameters(definition, register_task_definition)


def test_ecs_web_gets_the_app_roles_password_and_never_the_migration_password():
    (web,) = rendering.render(production(), "ecs", IMAGE)["web"]["containerDefinitions"]
    given = {s["name"]: s["valueFrom"] for s in web["secrets"]}
    assert given == {"SECRET_KEY": ARN + "SECRET_KEY", "POSTGRES_PASSWORD": ARN + "POSTGRES_PASSWORD"}
    assert env_of(web)["DATABASE_ROLE"] == "app"
    assert env_of(web)["APPLICATION_CONFIG"] == "production"
    plain = {k: v for k, v in production().items()}
    assert {k: v for k, v in env_of(web).items() if k != "APPLICATION_CONFIG"} == plain


def test_ecs_migration_runs_the_upgrade_as_the_owner_role_with_only_its_password():
    definition = rendering.render(production(), "ecs", IMAGE)["migrate"]
    (migrate,) = definition["containerDefinitions"]
    assert migrate["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    assert env_of(migrate)["DATABASE_ROLE"] == "migration"
    assert {s["name"] for s in migrate["secrets"]} == {"SECRET_KEY", "POSTGRES_MIGRATION_PASSWORD"}
    assert "portMappings" not in migrate and "healthCheck" not in migrate
    assert definition["family"] == "app-production-migrate"


def test_ecs_web_is_non_root_read_only_checked_on_healthz_and_logs_to_the_secrets_region():
    definition = rendering.render(production(), "ecs", IMAGE)["web"]
    (web,) = definition["containerDefinitions"]
    assert web["image"] == IMAGE and web["user"] == "10001:10001"
    assert web["readonlyRootFilesystem"] is True
    assert [m["containerPath"] for m in web["mountPoints"]] == ["/tmp"]
    assert {v["name"] for v in definition["volumes"]} == {m["sourceVolume"] for m in web["mountPoints"]}
    assert web["portMappings"][0]["containerPort"] == 8000
    assert "/healthz" in web["healthCheck"]["command"][-1]
    assert web["logConfiguration"]["options"]["awslogs-region"] == "eu-west-1"
    assert web["stopTimeout"] > int(production()["GUNICORN_GRACEFUL_TIMEOUT"])
    assert definition["networkMode"] == "awsvpc" and definition["requiresCompatibilities"] == ["FARGATE"]


def test_the_app_writes_only_where_the_renders_give_it_writable_space():
    # gunicorn's heartbeat files go to /dev/shm, a tmpfs outside the read-only root filesystem.
    assert 'worker_tmp_dir = "/dev/shm"' in (ROOT / "gunicorn.conf.py").read_text()
    assert plan.WRITABLE_PATHS == ("/tmp",)


def test_ecs_region_and_execution_role_can_be_given(register_task_definition):
    from botocore.validate import validate_parameters

    role = "arn:aws:iam::123456789012:role/app-production-execution"
    definition = rendering.render(production(), "ecs", IMAGE, region="us-east-2", execution_role=role)["web"]
    validate_parameters(definition, register_task_definition)
    assert definition["executionRoleArn"] == role
    assert definition["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-region"] == "us-east-2"
    with pytest.raises(DeployError, match="not an IAM role ARN"):
        rendering.render(production(), "ecs", IMAGE, execution_role="app-role")
    with pytest.raises(DeployError, match="not an AWS region"):
        rendering.render(production(), "ecs", IMAGE, region="Europe")


def test_ecs_without_any_arn_needs_a_region(tmp_path):
    config = config_with(
        tmp_path,
        SECRET_KEY={"valueFrom": "/app/production/SECRET_KEY"},
        POSTGRES_PASSWORD={"valueFrom": "/app/production/POSTGRES_PASSWORD"},
        POSTGRES_MIGRATION_PASSWORD={"valueFrom": "/app/production/POSTGRES_MIGRATION_PASSWORD"},
    )
    with pytest.raises(DeployError, match="pass --region"):
        rendering.render(config, "ecs", IMAGE)
    assert rendering.render(config, "ecs", IMAGE, region="eu-west-1")


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/production/SECRET_KEY",
        "/app/production/SECRET_KEY",
        ARN + "SECRET_KEY-AbCdEf",
        ARN + "SECRET_KEY:password::",
    ],
)
def test_secret_locations_ecs_reads_are_accepted(tmp_path, location):
    config = config_with(tmp_path, SECRET_KEY={"valueFrom": location})
    (web,) = rendering.render(config, "ecs", IMAGE)["web"]["containerDefinitions"]
    assert {"name": "SECRET_KEY", "valueFrom": location} in web["secrets"]


@pytest.mark.parametrize(
    "location",
    [
        "SECRET_KEY",  # a bare word: other configs use it to name an environment variable
        "arn:aws:secretsmanager:eu-west-1:1234:secret:app/SECRET_KEY",  # the account has 12 digits
        "arn:aws:s3:::bucket/SECRET_KEY",
        "arn:aws:secretsmanager:eu-west-1:123456789012:app/SECRET_KEY",  # no "secret:"
        "https://vault.example.com/SECRET_KEY",
    ],
)
def test_a_secret_location_ecs_cannot_read_is_refused_naming_the_entry(tmp_path, location):
    config = config_with(tmp_path, SECRET_KEY={"valueFrom": location})
    for target in rendering.TARGETS:
        with pytest.raises(DeployError, match=r"SECRET_KEY's valueFrom .* is not a Secrets Manager ARN"):
            rendering.render(config, target, IMAGE)


def test_a_literal_secret_is_refused_naming_the_entry(tmp_path):
    config = config_with(tmp_path, POSTGRES_PASSWORD={"value": "hunter2hunter2hunter2"})
    with pytest.raises(DeployError, match="POSTGRES_PASSWORD looks like a secret but is stored as a literal"):
        rendering.render(config, "kubernetes", IMAGE)


@pytest.mark.parametrize("image", ["", "   ", None])
def test_a_missing_image_is_refused(image):
    with pytest.raises(DeployError, match="pass --image"):
        rendering.render(production(), "ecs", image)


def test_a_malformed_image_an_unknown_target_and_a_loopback_bind_are_refused(tmp_path):
    with pytest.raises(DeployError, match="is not an image reference"):
        rendering.render(production(), "ecs", "my app:1")
    with pytest.raises(DeployError, match="valid targets: ecs, kubernetes"):
        rendering.render(production(), "nomad", IMAGE)
    with pytest.raises(DeployError, match="lower-case letters"):
        rendering.render(production(), "ecs", IMAGE, name="My_App")
    config = config_with(tmp_path, GUNICORN_BIND={"value": "127.0.0.1:8000"})
    with pytest.raises(DeployError, match="GUNICORN_BIND is '127.0.0.1:8000'"):
        rendering.render(config, "kubernetes", IMAGE)


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory):
    """A copy of what the tasks need, so a test can run them on a config file of its own."""
    root = tmp_path_factory.mktemp("project-copy-") / "app"  # pyproject.toml maps its coverage to the project
    for name in ("project", "devtools", "config", "migrations"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tasks.py", root)
    shutil.copy(ROOT / "pyproject.toml", root)  # the project's name
    return root


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ({"name": "SECRET_KEY", "value": "q3J9v2-LmZ8xT1pWc4Rb7NfY0aKs5HdE6gUo"}, "SECRET_KEY looks like a secret"),
        ({"name": "SECRET_KEY", "valueFrom": "arn:aws:s3:::keys/SECRET_KEY"}, "SECRET_KEY's valueFrom"),
    ],
)
def test_render_task_refuses_a_bad_secret_with_one_sentence_and_exit_2(project_copy, entry, said):
    entries = json.loads((ROOT / "config" / "production.json").read_text())
    entries = [entry if e["name"] == entry["name"] else e for e in entries]
    (project_copy / "config" / "staging.json").write_text(json.dumps(entries))
    result = run_inv("deploy.render", "ecs", "--image", IMAGE, "--config", "staging", cwd=project_copy)
    assert result.returncode == 2
    line = one_sentence(result.stderr)
    assert said in line and "config/staging.json" in line


def test_render_task_refuses_a_missing_image_with_exit_2():
    result = run_inv("deploy.render", "--target", "kubernetes")
    assert result.returncode == 2
    assert "No image to deploy: pass --image" in one_sentence(result.stderr)


def test_render_task_writes_one_file_per_definition(tmp_path):
    result = run_inv("deploy.render", "ecs", "--image", IMAGE, "--output", str(tmp_path / "ecs"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "ecs").iterdir()) == ["migrate.json", "web.json"]
    web = json.loads((tmp_path / "ecs" / "web.json").read_text())
    assert web == rendering.render(production(), "ecs", IMAGE)["web"]
    printed = run_inv("deploy.render", "kubernetes", "--image", IMAGE, "--replicas", "3")
    assert json.loads(printed.stdout)["4-deployment"]["spec"]["replicas"] == 3


def test_render_refuses_an_output_folder_it_cannot_create(tmp_path):
    (tmp_path / "taken").write_text("a file, not a folder")
    with pytest.raises(DeployError, match="cannot create the folder"):
        rendering.write({"web": {}}, tmp_path / "taken" / "ecs")


def test_a_config_without_database_role_still_gives_each_process_its_role(tmp_path):
    entries = json.loads((ROOT / "config" / "production.json").read_text())
    (tmp_path / "production.json").write_text(json.dumps([e for e in entries if e["name"] != "DATABASE_ROLE"]))
    config = load_config("production", environ={}, config_dir=tmp_path, require_secrets=False)
    definitions = rendering.render(config, "ecs", IMAGE)
    roles = {k: env_of(d["containerDefinitions"][0])["DATABASE_ROLE"] for k, d in definitions.items()}
    assert roles == {"web": "app", "migrate": "migration"}


# -- Kubernetes -----------------------------------------------------------------------------------


def test_kubernetes_manifests_pass_kubernetes_validate_strictly():
    utils = pytest.importorskip("kubernetes_validate.utils")
    manifests = rendering.render(production(), "kubernetes", IMAGE)
    assert [m["kind"] for m in manifests.values()] == ["ConfigMap", "Job", "Service", "Deployment"]
    for manifest in manifests.values():
        utils.validate(manifest, kubernetes.KUBERNETES_VERSION, strict=True)
    broken = manifests["4-deployment"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(utils.ValidationError):
        utils.validate(broken, kubernetes.KUBERNETES_VERSION, strict=True)


def test_kubernetes_deployment_probes_resources_security_and_graceful_termination():
    deployment = rendering.render(production(), "kubernetes", IMAGE, replicas=4)["4-deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (web,) = pod["containers"]
    assert deployment["spec"]["replicas"] == 4
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["resources"]["limits"] == {"cpu": "500m", "memory": "1024Mi"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert web["securityContext"]["readOnlyRootFilesystem"] is True
    assert web["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in web["volumeMounts"]} == {"/tmp"}
    assert {v["name"] for v in pod["volumes"]} == {m["name"] for m in web["volumeMounts"]}
    graceful = int(production()["GUNICORN_GRACEFUL_TIMEOUT"])
    sleep = int(web["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > sleep + graceful


def test_kubernetes_secrets_are_references_by_name_never_values_and_split_by_role():
    manifests = rendering.render(production(), "kubernetes", IMAGE)
    text = json.dumps(manifests)
    assert "arn:aws" not in text and STRONG["SECRET_KEY"] not in text
    assert not any(k in manifests["1-configmap"]["data"] for k in ("SECRET_KEY", "POSTGRES_PASSWORD"))
    (web,) = manifests["4-deployment"]["spec"]["template"]["spec"]["containers"]
    (migrate,) = manifests["2-migrate-job"]["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in web["env"] if "valueFrom" in e}
    assert refs == {
        "SECRET_KEY": {"name": "app-production", "key": "SECRET_KEY"},
        "POSTGRES_PASSWORD": {"name": "app-production", "key": "POSTGRES_PASSWORD"},
    }
    assert {e["name"] for e in migrate["env"] if "valueFrom" in e} == {"SECRET_KEY", "POSTGRES_MIGRATION_PASSWORD"}
    assert env_of(migrate) == {"DATABASE_ROLE": "migration"}
    assert env_of(web) == {"DATABASE_ROLE": "app"}
    # Nothing a container sets is in the ConfigMap too: which one wins differs (podman: envFrom, Kubernetes: env).
    assert "DATABASE_ROLE" not in manifests["1-configmap"]["data"]
    assert migrate["command"] == ["flask", "--app", "wsgi", "db", "upgrade"]


def test_the_podman_smoke_runs_the_migration_jobs_pod_template_unchanged_as_a_pod():
    from tests.kube_smoke import job_as_pod

    job = rendering.render(production(), "kubernetes", IMAGE)["2-migrate-job"]
    pod = job_as_pod(job)
    assert pod["kind"] == "Pod" and pod["metadata"]["name"] == job["metadata"]["name"]
    assert pod["spec"] == job["spec"]["template"]["spec"]
    assert pod["spec"]["restartPolicy"] == "Never"


def test_each_image_gets_its_own_migration_job():
    first = rendering.render(production(), "kubernetes", IMAGE)["2-migrate-job"]["metadata"]["name"]
    second = rendering.render(production(), "kubernetes", IMAGE + "1")["2-migrate-job"]["metadata"]["name"]
    assert first != second and first.startswith("app-production-migrate-") and len(first) <= 63


# -- Terraform ------------------------------------------------------------------------------------


def readme_terraform_snippet():
    """Return the README's Terraform block (the one that reads the raw config file)."""
    blocks = re.findall(r"```hcl\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if "jsondecode(file(" in b]
    return block


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not on PATH")
def test_the_readmes_terraform_snippet_reads_the_raw_config_as_the_ecs_render_does(tmp_path):
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "production.json", tmp_path / "config")
    (tmp_path / "main.tf").write_text(readme_terraform_snippet())
    env = {**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null", "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    expression = (
        "jsonencode({environment = local.environment, web = local.web_secrets, "
        "migrate = local.migrate_secrets, migrate_environment = local.migrate_environment})"
    )
    result = subprocess.run(
        ["terraform", "console"], input=expression + "\n", cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    read = json.loads(json.loads(result.stdout.strip()))
    rendered = rendering.render(production(), "ecs", IMAGE)
    (web,) = rendered["web"]["containerDefinitions"]
    (migrate,) = rendered["migrate"]["containerDefinitions"]
    # The render adds APPLICATION_CONFIG (the image already sets it for production); otherwise they agree.
    assert read["environment"] == [e for e in web["environment"] if e["name"] != "APPLICATION_CONFIG"]
    assert read["migrate_environment"] == [e for e in migrate["environment"] if e["name"] != "APPLICATION_CONFIG"]
    assert read["web"] == web["secrets"] and read["migrate"] == migrate["secrets"]


# -- the README's roles -----------------------------------------------------------------------------


def readme_roles_sql(suffix, password):
    """Return the README's role SQL in two parts (before and after ``\\c app``), with names made unique."""
    (block,) = re.findall(r"```sql\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.DOTALL)
    block = block.replace("PASSWORD '...'", f"PASSWORD '{password}'")
    block = re.sub(r"\bapp_owner\b", f"owner_{suffix}", block)
    block = re.sub(r"\bapp\b", f"app_{suffix}", block)
    before, after = block.split(f"\\c app_{suffix}\n")
    return before, after


def test_the_readmes_roles_let_the_web_role_use_rows_and_nothing_more(postgresql_server):
    import psycopg2

    suffix = os.urandom(4).hex()
    owner, web, admin, database = f"owner_{suffix}", f"app_{suffix}", f"admin_{suffix}", f"app_{suffix}"

    password = secrets.token_urlsafe(24)

    def connect(user, dbname):
        secret = {"passfile": str(postgresql_server.cluster.passfile)}
        if user != postgresql_server.user:
            secret = {"password": password}
        conn = psycopg2.connect(
            host=postgresql_server.host, port=postgresql_server.port, user=user, dbname=dbname, **secret
        )
        conn.autocommit = True
        return contextlib.closing(conn)

    before, after = readme_roles_sql(suffix, password)
    with connect(postgresql_server.user, "postgres") as superuser:
        # A managed server's admin is no superuser: it may only create roles and databases.
        superuser.cursor().execute(f"CREATE ROLE {admin} LOGIN CREATEROLE CREATEDB PASSWORD '{password}'")
    try:
        with connect(admin, "postgres") as conn:
            for statement in filter(str.strip, before.split(";")):
                conn.cursor().execute(statement)
        with connect(admin, database) as conn:
            conn.cursor().execute(after)
        with connect(owner, database) as conn:  # what a migration does, as the owner
            conn.cursor().execute(
                "CREATE TABLE users (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, email text)"
            )
        with connect(web, database) as conn:
            cur = conn.cursor()
            cur.execute("INSERT INTO users (email) VALUES ('a@example.com')")
            cur.execute("UPDATE users SET email = 'b@example.com'")
            cur.execute("SELECT email FROM users")
            assert cur.fetchall() == [("b@example.com",)]
            cur.execute("DELETE FROM users")
            for forbidden in ("CREATE TABLE t (id int)", "ALTER TABLE users ADD x int", "DROP TABLE users"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(forbidden)
    finally:
        with connect(postgresql_server.user, "postgres") as superuser:
            cur = superuser.cursor()
            cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            for role in (web, owner, admin):
                cur.execute(f"DROP ROLE IF EXISTS {role}")


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "SENTRY_DSN"])
def test_a_url_with_a_password_is_refused_by_every_render_in_one_sentence(tmp_path, name):
    config = config_with(tmp_path, **{name: {"value": "postgresql://app:hunter2hunter2@db:5432/app?sslmode=disable"}})
    for target in rendering.TARGETS:
        with pytest.raises(DeployError) as info:
            rendering.render(config, target, IMAGE)
        assert str(info.value) == (
            f"{config.display_path()}: {name} holds a URL with a password, which would be rendered in plain text; "
            "keep the password in a 'valueFrom' secret of its own."
        )


@pytest.mark.parametrize("url", ["https://api.example.com:443/v1", "https://user@example.com/", "postgresql:///app"])
def test_a_url_without_a_password_is_rendered(tmp_path, url):
    config = config_with(tmp_path, SERVICE_URL={"value": url})
    for target in rendering.TARGETS:
        assert json.dumps(url) in json.dumps(rendering.render(config, target, IMAGE))


@pytest.mark.parametrize(("proxies", "refused"), [("0", True), ("1", False), ("2", False)])
def test_a_config_with_no_buffering_proxy_in_front_is_not_rendered(tmp_path, proxies, refused):
    config = config_with(tmp_path, PROXY_FIX_X_FOR={"value": proxies})
    for target in rendering.TARGETS:
        if refused:
            with pytest.raises(DeployError, match="PROXY_FIX_X_FOR is 0, meaning clients reach gunicorn directly"):
                rendering.render(config, target, IMAGE)
        else:
            rendering.render(config, target, IMAGE)


def test_the_kubernetes_service_is_reachable_inside_the_cluster_only(tmp_path):
    manifests = rendering.render(config_with(tmp_path), "kubernetes", IMAGE)
    services = [m for m in manifests.values() if m["kind"] == "Service"]
    assert services and all(s["spec"]["type"] == "ClusterIP" for s in services)


def test_renders_expose_the_metrics_port_for_scrapers_and_not_through_the_service(register_task_definition):
    manifests = rendering.render(production(), "kubernetes", IMAGE)
    template = manifests["4-deployment"]["spec"]["template"]
    (web,) = template["spec"]["containers"]
    assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in web["ports"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "9464",
        "prometheus.io/path": "/metrics",
    }
    assert [p["name"] for p in manifests["3-service"]["spec"]["ports"]] == ["http"]
    definitions = rendering.render(production(), "ecs", IMAGE)
    web = next(c for d in definitions.values() for c in d["containerDefinitions"] if c["name"] == "web")
    assert [m["containerPort"] for m in web["portMappings"]] == [8000, 9464]


def test_without_a_metrics_endpoint_nothing_is_exposed_or_annotated(tmp_path):
    config = config_with(tmp_path, METRICS_BIND={"value": ""})
    template = rendering.render(config, "kubernetes", IMAGE)["4-deployment"]["spec"]["template"]
    assert "annotations" not in template["metadata"]
    assert [p["name"] for p in template["spec"]["containers"][0]["ports"]] == ["http"]


@pytest.mark.parametrize("bind", ["127.0.0.1:9464", "0.0.0.0:8000"])
def test_a_metrics_endpoint_no_scraper_could_reach_is_refused(tmp_path, bind):
    config = config_with(tmp_path, METRICS_BIND={"value": bind})
    with pytest.raises(DeployError, match=f"METRICS_BIND is '{re.escape(bind)}'; in a container it must listen"):
        rendering.render(config, "kubernetes", IMAGE)
