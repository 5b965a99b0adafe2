"""The compose command lines: client detection, file selection, and clear errors without Docker."""

import os
import re
import stat
import subprocess
import sys

import pytest

from devtools import compose, images, smoke
from devtools.errors import ComposeError
from devtools.identity import project_name
from tests.helpers import ROOT


def fake_program(directory, name, exit_code):
    path = directory / name
    path.write_text(f"#!/bin/sh\nexit {exit_code}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_command_names_project_and_file():
    assert compose.command("development", "up", dry=True) == [
        "docker",
        "compose",
        "-p",
        f"{project_name()}-development",
        "-f",
        "docker/development.yml",
        "up",
    ]


def test_v2_client_is_preferred(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 0)
    fake_program(tmp_path, "docker-compose", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.client() == [str(tmp_path / "docker"), "compose"]


def test_v1_client_is_the_fallback(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 1)
    fake_program(tmp_path, "docker-compose", 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compose.client() == [str(tmp_path / "docker-compose")]


def test_no_client_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ComposeError, match="No Docker Compose client found"):
        compose.client()


def test_no_engine_is_one_sentence(tmp_path, monkeypatch):
    fake_program(tmp_path, "docker", 1)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ComposeError, match="The Docker engine is not running"):
        compose.engine_running()
    compose.engine_running(dry=True)


def test_missing_compose_file_lists_the_configs_that_have_one():
    with pytest.raises(
        ComposeError, match="no compose file docker/testing.yml; configs with one: development, production"
    ):
        compose.compose_file("testing")


def test_compose_files_take_their_variables_from_the_config():
    text = (compose.DOCKER_DIR / "production.yml").read_text()
    assert "${POSTGRES_DB" in text and "${POSTGRES_IMAGE:?" in text
    assert "condition: service_healthy" in text and "version:" not in text


# -- the compose files, read as compose reads them --------------------------------------------------------------

yaml = pytest.importorskip("yaml")
APP_SERVICES = {"development": ["web"], "production": ["migrate", "web"]}
# The stack's wiring: fixed by the compose files, the one exception to "every setting from the environment".
WIRING = {"APPLICATION_CONFIG", "POSTGRES_HOST", "POSTGRES_PORT", "GUNICORN_BIND"}
ROLE_SECRETS = {"POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD"}
# A file on the developer's machine (the local cluster's passfile): containers get passwords from their environment.
HOST_ONLY = {"POSTGRES_PASSFILE"}


def stack(name):
    return yaml.safe_load((compose.DOCKER_DIR / f"{name}.yml").read_text())


def no_secrets(monkeypatch):
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("name", ["development", "production"])
def test_compose_files_have_no_top_level_name_so_compose_v1_reads_them(name):
    assert "name" not in stack(name) and "version" not in stack(name)


def test_development_web_probes_the_port_its_server_listens_on():
    web = stack("development")["services"]["web"]
    probe = " ".join(web["healthcheck"]["test"])
    assert "--port 5000" in " ".join(web["command"]) and "127.0.0.1:5000/healthz" in probe
    assert web["ports"][0].endswith(":5000")


def test_development_web_runs_as_the_host_user(monkeypatch):
    web = stack("development")["services"]["web"]
    assert web["user"].startswith("${HOST_UID") and ":${HOST_GID" in web["user"]
    env = compose.environ(compose.load("development", ["up"]))
    assert env["HOST_UID"] == str(os.getuid()) and env["HOST_GID"] == str(os.getgid())


def test_development_server_is_the_only_child_of_an_init():
    web = stack("development")["services"]["web"]
    assert web["init"] is True
    assert "&& exec flask --app wsgi run" in web["command"][-1]


@pytest.mark.parametrize("name", ["development", "production"])
def test_every_app_service_takes_every_setting_from_the_one_environment(name):
    from project.configuration import load_config

    config = load_config(name, environ={}, require_secrets=False)
    for service in APP_SERVICES[name]:
        environment = stack(name)["services"][service]["environment"]
        passed = {k for k, v in environment.items() if v is None}
        fixed = {k for k, v in environment.items() if v is not None}
        missing = {e.name for e in config.entries} - passed - fixed - ROLE_SECRETS - HOST_ONLY
        assert missing == set(), f"{service} does not pass {sorted(missing)} through"
        assert WIRING <= fixed
        assert fixed - WIRING <= {"DATABASE_ROLE", "PYTHONDONTWRITEBYTECODE"}


def test_a_shell_override_reaches_every_production_service(monkeypatch):
    monkeypatch.setenv("POSTGRES_DB", "other")
    env = compose.environ(compose.load("production", ["ps"]))
    assert env["POSTGRES_DB"] == "other"
    services = stack("production")["services"]
    assert services["db"]["environment"]["POSTGRES_DB"].startswith("${POSTGRES_DB")
    assert all("POSTGRES_DB" in services[s]["environment"] for s in APP_SERVICES["production"])


def test_web_holds_its_own_role_password_and_never_the_owners():
    services = stack("production")["services"]
    web, migrate = services["web"]["environment"], services["migrate"]["environment"]
    assert "POSTGRES_PASSWORD" in web and "POSTGRES_MIGRATION_PASSWORD" not in web
    assert web["DATABASE_ROLE"] == "app" and "SECRET_KEY" in web
    assert migrate["DATABASE_ROLE"] == "migration" and "POSTGRES_MIGRATION_PASSWORD" in migrate
    assert "POSTGRES_PASSWORD" not in migrate and "SECRET_KEY" in migrate


@pytest.mark.parametrize("args", [["ps"], ["logs", "--follow"], ["down", "--volumes"], ["config"]])
def test_commands_that_start_nothing_need_no_secrets(monkeypatch, args):
    no_secrets(monkeypatch)
    assert not compose.needs_secrets(args)
    assert "SECRET_KEY" not in compose.environ(compose.load("production", args))


@pytest.mark.parametrize("args", [["up", "--detach"], ["--ansi", "never", "run", "--rm", "web", "ls"], ["start"]])
def test_commands_that_start_containers_need_the_secrets(monkeypatch, args):
    from project.configuration import ConfigError

    no_secrets(monkeypatch)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        compose.load("production", args)


def test_no_compose_file_requires_a_secret_by_interpolation():
    for name in ("development", "production"):
        text = (compose.DOCKER_DIR / f"{name}.yml").read_text()
        for secret in ("SECRET_KEY", "POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD"):
            assert f"${{{secret}:?" not in text, f"{name}.yml makes {secret} required for every command"


@pytest.mark.parametrize("name", ["development", "production"])
def test_images_the_stack_builds_are_built_once_and_never_pulled(name):
    built = {}
    for service, spec in stack(name)["services"].items():
        if spec.get("image", "").startswith("app"):
            assert spec["pull_policy"] == "never", f"{service} would try to pull {spec['image']}"
            if "build" in spec:
                assert spec["image"] not in built, f"{service} and {built[spec['image']]} both build {spec['image']}"
                built[spec["image"]] = service
    images_used = {
        spec["image"] for spec in stack(name)["services"].values() if spec.get("image", "").startswith("app")
    }
    assert set(built) == images_used


def test_production_services_have_limits_and_rotated_logs():
    for service, spec in stack("production")["services"].items():
        assert spec["cpus"] and spec["mem_limit"], service
        assert spec["logging"]["driver"] == "json-file" and spec["logging"]["options"]["max-size"], service


@pytest.mark.parametrize("name", ["development", "production"])
def test_healthchecks_have_a_start_period(name):
    for service, spec in stack(name)["services"].items():
        if "healthcheck" in spec:
            assert spec["healthcheck"]["start_period"], service


def test_migrate_logs_the_revision_before_and_after():
    command = " ".join(stack("production")["services"]["migrate"]["command"])
    assert "schema before:" in command and "db upgrade" in command and "schema after:" in command


def test_only_the_proxy_is_published_so_web_scales_behind_it():
    services = stack("production")["services"]
    assert "ports" not in services["web"] and "ports" not in services["migrate"] and "ports" not in services["db"]
    assert services["proxy"]["ports"] == ["127.0.0.1:${PUBLISHED_PORT:-8000}:8080"]


def test_the_proxy_overwrites_what_a_client_says_it_forwarded():
    from project.configuration import load_config

    nginx = (compose.DOCKER_DIR / "proxy" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    assert "$proxy_add_x_forwarded_for" not in nginx
    # The app trusts exactly the one proxy there is.
    assert load_config("production", environ={}, require_secrets=False)["PROXY_FIX_X_FOR"] == "1"


def test_the_database_init_makes_the_web_role_least_privileged_and_turns_tls_on():
    roles = (compose.DOCKER_DIR / "postgres" / "20-roles.sh").read_text()
    assert 'ALTER DEFAULT PRIVILEGES FOR ROLE :"owner"' in roles and 'GRANT USAGE ON SCHEMA public TO :"app"' in roles
    assert "GRANT ALL" not in roles and "CREATE ON" not in roles and "SUPERUSER PASSWORD" not in roles
    tls = (compose.DOCKER_DIR / "postgres" / "10-tls.sh").read_text()
    assert "ssl = on" in tls and "hostnossl all all all reject" in tls
    assert not list(ROOT.glob("docker/**/*.key")) and not list(ROOT.glob("docker/**/*.pem"))


# -- the image ----------------------------------------------------------------------------------------------------


def dockerfiles():
    return [compose.DOCKER_DIR / "Dockerfile", compose.DOCKER_DIR / "proxy" / "Dockerfile"]


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.parent.name)
def test_dockerfiles_have_no_syntax_line_that_would_pull_a_frontend(path):
    assert not re.search(r"^#\s*syntax\s*=", path.read_text(), re.MULTILINE | re.IGNORECASE)


def test_the_runtime_user_cannot_change_the_code():
    text = (compose.DOCKER_DIR / "Dockerfile").read_text()
    copies = [line for line in text.splitlines() if line.startswith("COPY") and "--from" not in line]
    assert copies and not any("--chown" in line for line in copies)
    assert "chmod -R a-w" in text and text.index("chmod -R a-w") < text.index("USER 10001")


# -- base images: exact pins in one place ---------------------------------------------------------------------


def test_base_images_are_exact_pins():
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", images.PYTHON_IMAGE)
    assert re.fullmatch(r"debian:\w+-\d{8}-slim", images.DEBIAN_IMAGE)
    for major, image in images.POSTGRES_IMAGES.items():
        assert re.fullmatch(rf"postgres:{major}\.\d+-\w+", image)


def test_no_other_file_names_a_base_image():
    for path in [*dockerfiles(), *compose.DOCKER_DIR.glob("*.yml")]:
        text = path.read_text()
        froms = re.findall(r"^FROM\s+(\S+)", text, re.MULTILINE)
        assert all(f.startswith("${") for f in froms), path
        assert not re.search(r"image:\s*(python|postgres|debian):", text), path


def test_every_image_reference_in_the_repository_comes_from_the_pins_file():
    # Any file git tracks, docs included: an exact image name (a pinned one, or one that the pins file does not
    # hold) anywhere but the pins file is a second place to forget at the next update.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    pattern = re.compile(r"\b(?:python|postgres|debian|nginx|ubuntu|alpine):[0-9a-z][\w.-]*\d[\w.-]*(?:@sha256:\w+)?")
    found = {}
    for name in tracked.stdout.split("\0"):
        path = ROOT / name
        if name and path.is_file() and path.resolve() != images.PINS_FILE:
            hits = pattern.findall(path.read_text(errors="replace"))
            if hits:
                found[name] = hits
    assert found == {}
    assert set(images.read_pins().values()) == {
        images.PYTHON_IMAGE,
        images.DEBIAN_IMAGE,
        *images.POSTGRES_IMAGES.values(),
    }


@pytest.mark.parametrize("name", ["development", "production", "testing"])
def test_the_postgres_image_follows_the_configs_major_version(name, monkeypatch):
    from project.configuration import load_config

    config = load_config(name, environ={}, require_secrets=False)
    assert compose.environ(config)["POSTGRES_IMAGE"].startswith(f"postgres:{config['POSTGRES_MAJOR_VERSION']}.")
    # From 18 on the image keeps its data under /var/lib/postgresql/18/docker: the volume mounts its parent.
    assert compose.environ(config)["POSTGRES_VOLUME"] == "/var/lib/postgresql"
    assert images.postgres_volume("17") == "/var/lib/postgresql/data"
    monkeypatch.setenv("POSTGRES_MAJOR_VERSION", "14")
    with pytest.raises(ComposeError, match="pins no postgres image for it"):
        compose.environ(load_config(name, require_secrets=False))


# -- the smoke check without an engine ----------------------------------------------------------------------------


def test_smoke_check_without_an_engine_says_it_was_skipped_and_exits_0(tmp_path):
    fake_program(tmp_path, "docker", 1)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "devtools.smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.startswith("Smoke check skipped:") and ("Compose" in done.stdout or "engine" in done.stdout)


def test_smoke_check_makes_throwaway_secrets_only_for_those_unset():
    made = smoke.throwaway_secrets({"SECRET_KEY": "given"})
    assert set(made) == {"POSTGRES_PASSWORD", "POSTGRES_MIGRATION_PASSWORD"} and all(len(v) > 40 for v in made.values())


# -- passthrough tasks ----------------------------------------------------------------------------------------------


def test_compose_passthrough_keeps_each_word_and_needs_no_secret_for_ps():
    from tests.helpers import inv

    result = inv(
        "--dry", "compose.any", "--config", "production", "--", "ps", "-a", "--format", "{{.Name}} {{.Status}}"
    )
    assert result.returncode == 0, result.stderr
    assert "-f docker/production.yml ps -a --format '{{.Name}} {{.Status}}'" in result.stdout


def test_compose_passthrough_up_needs_the_secrets():
    from tests.helpers import inv

    # Checked before Docker is looked for, so this holds on machines without it.
    result = inv("compose.any", "--config", "production", "--", "up", "--detach")
    assert result.returncode == 2 and "SECRET_KEY" in result.stderr
    assert inv("--dry", "compose.any", "--config", "production", "--", "up").returncode == 0


def test_compose_passthrough_without_a_subcommand_is_one_sentence():
    from tests.helpers import inv

    result = inv("compose.any")
    assert result.returncode == 2 and "name a compose subcommand after --" in result.stderr


def test_flask_runs_any_flask_command_under_a_config():
    from tests.helpers import inv

    result = inv("flask", "--config", "testing", "--", "routes")
    assert result.returncode == 0, result.stderr
    assert "main.index" in result.stdout and "/readyz" in result.stdout
    assert inv("flask").returncode == 2


def test_ci_runs_the_smoke_check_on_a_runner_with_docker():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["smoke"]
    assert job["runs-on"].startswith("ubuntu")
    assert any(step.get("run") == "nox -s smoke" for step in job["steps"])


def test_images_prints_each_pin_for_a_build_by_hand(capsys):
    assert images.main(["python"]) == 0 and capsys.readouterr().out.strip() == images.PYTHON_IMAGE
    assert images.main(["debian"]) == 0 and capsys.readouterr().out.strip() == images.DEBIAN_IMAGE
    assert images.main(["postgres", "production"]) == 0
    assert capsys.readouterr().out.strip() == images.POSTGRES_IMAGES["18"]
    assert images.main(["postgres", "nope"]) == 2 and "no config 'nope'" in capsys.readouterr().err
    assert images.main([]) == 2
