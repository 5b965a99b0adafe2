"""What a config must be to be deployed, rule by rule and at each limit: the image, the name, the app's and the
metrics' binds, the proxy, where secrets may live, and which process gets which settings and secrets."""

import json

import pytest

from devtools.deploy import ecs, plan
from devtools.deploy.plan import DeployPlan, Size
from devtools.errors import DeployError
from devtools.identity import project_name
from tests.deploy_renders import FIXTURES, IMAGE, NAME, config

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:shop/production/SECRET_KEY"


def config_with(tmp_path, drop=(), **changes):
    """The fixed config with entries replaced (``{"value": ...}`` or ``{"valueFrom": ...}``), added or dropped."""
    entries = [e for e in json.loads((FIXTURES / "production.json").read_text()) if e["name"] not in drop]
    entries = [{"name": e["name"], **changes.pop(e["name"])} if e["name"] in changes else e for e in entries]
    entries += [{"name": name, **change} for name, change in changes.items()]
    (tmp_path / "production.json").write_text(json.dumps(entries))
    return config(tmp_path)


def planned(tmp_path, drop=(), **changes) -> DeployPlan:
    return plan.plan(config_with(tmp_path, drop, **changes), IMAGE, NAME)


def refusal(tmp_path, drop=(), image=IMAGE, name=NAME, **changes) -> str:
    with pytest.raises(DeployError) as refused:
        plan.plan(config_with(tmp_path, drop, **changes), image, name)
    return str(refused.value)


# -- the image and the name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image", ["app", "A", "0app", "registry.example.com:5000/team/app:1.2.3", "app@sha256:0123abcd", "my_app-x.y/z"]
)
def test_an_image_reference_is_accepted(tmp_path, image):
    assert plan.plan(config(), image, NAME).image == image


@pytest.mark.parametrize("image", ["-app", ".app", "/app", "app tag", "app\n", "app;rm", "app$(x)", "äpp"])
def test_anything_else_is_refused_as_an_image(tmp_path, image):
    assert refusal(tmp_path, image=image) == (
        f"--image {image!r} is not an image reference like registry.example.com/app:1.2.3."
    )


@pytest.mark.parametrize("image", [None, "", " ", "\t\n"])
def test_no_image_is_refused_saying_what_to_pass(tmp_path, image):
    assert refusal(tmp_path, image=image) == (
        "No image to deploy: pass --image with the image's repository and tag (REGISTRY/NAME:TAG)."
    )


@pytest.mark.parametrize("name", ["a", "ab", "a1", "a-b", "a" * 32, "shop-front-2"])
def test_a_name_of_up_to_32_lowercase_letters_digits_and_inner_dashes_is_accepted(name):
    assert plan.plan(config(), IMAGE, name).base == f"{name}-production"


@pytest.mark.parametrize("name", ["a" * 33, "", "1a", "-a", "a-", "A", "a_b", "a.b", "a\n", "ä"])
def test_any_other_name_is_refused(tmp_path, name):
    assert refusal(tmp_path, name=name) == (
        f"--name {name!r} must be lower-case letters, digits and dashes, starting with a letter."
    )


def test_the_name_defaults_to_the_projects():
    assert plan.plan(config(), IMAGE).name == project_name()


# -- binds and the proxy ---------------------------------------------------------------------------


@pytest.mark.parametrize(("bind", "port"), [("0.0.0.0:1", 1), ("0.0.0.0:8080", 8080), ("[::]:65535", 65535)])
def test_a_bind_on_every_address_and_a_valid_port_is_deployed(tmp_path, bind, port):
    assert planned(tmp_path, GUNICORN_BIND={"value": bind}).port == port


def test_without_a_bind_the_container_listens_on_port_8000(tmp_path):
    assert planned(tmp_path, drop=["GUNICORN_BIND"]).port == 8000


@pytest.mark.parametrize(
    "bind",
    [
        "0.0.0.0:0",
        "0.0.0.0:65536",
        "0.0.0.0:http",
        "0.0.0.0:",
        "0.0.0.0:٨٠٠٠",  # digits of another script, which int() would read as 8000
        "0.0.0.0:²",
        "127.0.0.1:8000",
        "127.1.2.3:80",
        "localhost:80",
    ],
)
def test_a_bind_no_one_outside_the_container_could_reach_is_refused(tmp_path, bind):
    said = refusal(tmp_path, GUNICORN_BIND={"value": bind})
    assert said == (
        f"{FIXTURES.name}/production.json: GUNICORN_BIND is {bind!r}; a container must listen on all its addresses, "
        "e.g. 0.0.0.0:8000."
    ).replace(f"{FIXTURES.name}/", said.split("production.json")[0])


@pytest.mark.parametrize("proxies", [None, "0"])
def test_no_proxy_in_front_is_refused(tmp_path, proxies):
    change = {"drop": ["PROXY_FIX_X_FOR"]} if proxies is None else {"PROXY_FIX_X_FOR": {"value": proxies}}
    said = refusal(tmp_path, **change)
    assert said.endswith(
        ": PROXY_FIX_X_FOR is 0, meaning clients reach gunicorn directly, whose workers a few slow clients can hold; "
        "deploy it behind a proxy that buffers requests (a load balancer, ingress-nginx) and set PROXY_FIX_X_FOR to "
        "the number of proxies (1 for one)."
    )


@pytest.mark.parametrize(("value", "port"), [("", None), ("0.0.0.0:9464", 9464), ("[::]:9100", 9100)])
def test_a_metrics_endpoint_is_deployed_on_all_addresses_or_not_at_all(tmp_path, value, port):
    assert planned(tmp_path, METRICS_BIND={"value": value}).metrics_port == port


def test_without_a_metrics_setting_there_is_no_endpoint(tmp_path):
    assert planned(tmp_path, drop=["METRICS_BIND"]).metrics_port is None


@pytest.mark.parametrize("bind", ["127.0.0.1:9464", "127.9.9.9:9464", "localhost:9464", "[::1]:9464", "0.0.0.0:8080"])
def test_a_metrics_endpoint_on_loopback_or_the_apps_port_is_refused(tmp_path, bind):
    assert refusal(tmp_path, METRICS_BIND={"value": bind}) == (
        f"{tmp_path / 'production.json'}: METRICS_BIND is {bind!r}; in a container it must listen on all its "
        "addresses on a port of its own, e.g. 0.0.0.0:9464 (or be empty for no metrics endpoint)."
    )


def test_the_graceful_timeout_is_the_configs_or_gunicorns_30_seconds(tmp_path):
    assert planned(tmp_path, GUNICORN_GRACEFUL_TIMEOUT={"value": "7"}).graceful_timeout == 7
    assert planned(tmp_path, drop=["GUNICORN_GRACEFUL_TIMEOUT"]).graceful_timeout == 30


# -- where secrets live ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        SECRET_ARN,
        SECRET_ARN + ":password::",  # a JSON key of the secret
        SECRET_ARN + ":password:AWSCURRENT:",
        "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:a",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a_b+c=d.e@f-g/h",
        "arn:aws-iso:secretsmanager:us-iso-east-1:123456789012:secret:a",
        "arn:aws-iso-b:secretsmanager:us-isob-east-1:123456789012:secret:a",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/production/KEY",
        "arn:aws:ssm:ap-southeast-2:123456789012:parameter/a.b-c_d",
        "/app",
        "/app/production/SECRET_KEY",
        "/a.b/c-d/e_f",
    ],
)
def test_a_secret_location_ecs_can_read_is_accepted(location):
    plan.check_secret_location("production.json", "SECRET_KEY", location)


@pytest.mark.parametrize(
    "location",
    [
        "SECRET_KEY",  # a bare word: how other configs name an environment variable
        "app/production/SECRET_KEY",
        "/app/",
        "/app//KEY",
        "/app key",
        "/app\n",
        SECRET_ARN + "\n",
        "arn:aws-xx:secretsmanager:eu-west-1:123456789012:secret:a",
        "arn:aws:secretsmanager:eu-west-1:12345678901:secret:a",  # 11 digits
        "arn:aws:secretsmanager:eu-west-1:1234567890123:secret:a",  # 13 digits
        "arn:aws:secretsmanager:euwest1:123456789012:secret:a",
        "arn:aws:secretsmanager:eu-west-١:123456789012:secret:a",
        "arn:aws:secretsmanager:eu-west-1:١٢٣٤٥٦٧٨٩٠١٢:secret:a",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a:b",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/a b",
        "arn:aws:s3:::bucket/key",
    ],
)
def test_a_secret_location_ecs_cannot_read_is_refused_naming_the_entry(location):
    with pytest.raises(DeployError) as refused:
        plan.check_secret_location("config/production.json", "SECRET_KEY", location)
    assert (
        str(refused.value)
        == f"config/production.json: SECRET_KEY's valueFrom {location!r} is not {plan.VALID_LOCATIONS}."
    )


@pytest.mark.parametrize(("length", "shown"), [(80, "x" * 79 + "y"), (81, "x" * 77 + "...")])
def test_a_refused_location_is_shown_whole_up_to_80_characters(length, shown):
    location = "x" * (length - 1) + "y"
    with pytest.raises(DeployError) as refused:
        plan.check_secret_location("p", "K", location)
    assert f"valueFrom {shown!r} is not" in str(refused.value)


def test_a_refused_location_stops_the_plan_naming_the_file(tmp_path):
    assert refusal(tmp_path, SECRET_KEY={"valueFrom": "SECRET_KEY"}) == (
        f"{tmp_path / 'production.json'}: SECRET_KEY's valueFrom 'SECRET_KEY' is not {plan.VALID_LOCATIONS}."
    )


def test_every_secret_written_into_the_file_is_named_in_one_refusal(tmp_path):
    said = refusal(tmp_path, API_TOKEN={"value": "abc"}, MAIL_PASSWORD={"value": "def"})
    where = tmp_path / "production.json"
    assert said == " ".join(
        f"{where}: {name} looks like a secret but is stored as a literal 'value'; use 'valueFrom'."
        for name in ("API_TOKEN", "MAIL_PASSWORD")
    )


@pytest.mark.parametrize(("path", "name"), [("/tmp", "tmp"), ("/var/cache/app/", "var-cache-app"), ("/", "root"),
                                            ("/X/data-X", "X-data-X")])  # fmt: skip
def test_a_volume_is_named_after_its_path(path, name):
    assert plan.volume_name(path) == name


# -- what each process gets ------------------------------------------------------------------------


def test_each_process_gets_its_own_role_and_the_settings_in_file_order_after_the_config_name(tmp_path):
    found = planned(tmp_path)
    web, migrate = dict(found.environment("app")), dict(found.environment("migration"))
    assert found.environment("app")[0] == ("APPLICATION_CONFIG", "production")
    assert (web["DATABASE_ROLE"], migrate["DATABASE_ROLE"]) == ("app", "migration")
    assert [k for k, _ in found.environment("app")][1:] == [k for k, _ in found.plain]
    assert {k: v for k, v in web.items() if k != "DATABASE_ROLE"} == {
        k: v for k, v in migrate.items() if k != "DATABASE_ROLE"
    }


def test_without_a_role_in_the_config_each_process_still_gets_one_last(tmp_path):
    found = planned(tmp_path, drop=["DATABASE_ROLE"])
    assert found.environment("migration")[-1] == ("DATABASE_ROLE", "migration")
    assert [k for k, _ in found.environment("app")].count("DATABASE_ROLE") == 1


def test_an_application_config_entry_in_the_file_is_not_repeated(tmp_path):
    found = planned(tmp_path, APPLICATION_CONFIG={"value": "elsewhere"})
    assert [k for k, _ in found.environment("app")].count("APPLICATION_CONFIG") == 1
    assert found.environment("app")[0] == ("APPLICATION_CONFIG", "production")


@pytest.mark.parametrize(
    ("role", "kept"),
    [
        ("app", ["SECRET_KEY", "POSTGRES_PASSWORD"]),
        ("migration", ["SECRET_KEY", "POSTGRES_MIGRATION_PASSWORD"]),
        ("nobody", ["SECRET_KEY"]),
    ],
)
def test_a_process_gets_only_its_own_roles_password(tmp_path, role, kept):
    assert [k for k, _ in planned(tmp_path).secrets_for(role)] == kept


@pytest.mark.parametrize(
    ("size", "cpus", "kubernetes"),
    [
        (Size(256, 512), 0.25, {"cpu": "250m", "memory": "512Mi"}),
        (Size(512, 1024), 0.5, {"cpu": "500m", "memory": "1024Mi"}),
        (Size(1024, 3072), 1.0, {"cpu": "1000m", "memory": "3072Mi"}),
        (Size(100, 1), 100 / 1024, {"cpu": "97m", "memory": "1Mi"}),  # rounded down, never above ECS's share
    ],
)
def test_a_size_in_ecs_units_is_the_same_share_everywhere(size, cpus, kubernetes):
    assert size.cpus == cpus and size.kubernetes == kubernetes


def test_the_processes_are_valid_fargate_sizes_and_run_as_the_images_user():
    assert (plan.WEB_SIZE, plan.MIGRATE_SIZE) == (Size(512, 1024), Size(256, 512))
    assert plan.APP_UID == 10001 and plan.KILL_MARGIN == 5
    assert plan.MIGRATE_COMMAND == ["flask", "--app", "wsgi", "db", "upgrade"]


@pytest.mark.parametrize(("path", "name"), [("/tmp", "tmp"), ("/var/run/app", "var-run-app"), ("/", "root")])
def test_a_writable_path_names_its_volume(path, name):
    assert plan.volume_name(path) == name


# -- ECS's own inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "ap-southeast-2", "cn-north-1"])
def test_an_aws_region_is_accepted(region):
    web = ecs.ecs_task_definitions(plan.plan(config(), IMAGE, NAME), region)["web"]
    assert web["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-region"] == region


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "eu-west-1\n", "euwest1", "eu-west-12", "eu-west-١"])
def test_anything_else_is_refused_as_a_region(region):
    with pytest.raises(DeployError) as refused:
        ecs.ecs_task_definitions(plan.plan(config(), IMAGE, NAME), region)
    assert str(refused.value) == f"--region {region!r} is not an AWS region like eu-west-1."


@pytest.mark.parametrize(
    ("role", "accepted"),
    [
        ("arn:aws:iam::123456789012:role/exec", True),
        ("arn:aws-cn:iam::123456789012:role/path/to/exec+=,.@_-", True),
        ("arn:aws:iam::123456789012:role/", False),
        ("arn:aws:iam::12345678901:role/exec", False),
        ("arn:aws:iam:eu-west-1:123456789012:role/exec", False),
        ("arn:aws:iam::123456789012:user/exec", False),
        ("arn:aws:iam::123456789012:role/exec\n", False),
    ],
)
def test_only_an_iam_role_arn_is_taken_as_the_execution_role(role, accepted):
    checked = plan.plan(config(), IMAGE, NAME)
    if accepted:
        assert ecs.ecs_task_definitions(checked, execution_role=role)["web"]["executionRoleArn"] == role
        return
    with pytest.raises(DeployError) as refused:
        ecs.ecs_task_definitions(checked, execution_role=role)
    assert str(refused.value) == (f"--execution-role {role!r} is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME).")


def test_without_an_execution_role_the_tasks_name_none():
    documents = ecs.ecs_task_definitions(plan.plan(config(), IMAGE, NAME))
    assert all("executionRoleArn" not in task for task in documents.values())


def test_the_region_is_the_first_arns_and_a_given_one_wins(tmp_path):
    found = planned(tmp_path, SECRET_KEY={"valueFrom": "arn:aws:ssm:us-east-2:123456789012:parameter/k"})
    assert ecs.secret_region(found) == "us-east-2"
    assert ecs.secret_region(planned(tmp_path)) == "eu-central-1"  # the fixture's first ARN; its first secret is a path


def test_with_no_arn_among_the_secrets_a_region_must_be_given(tmp_path):
    found = planned(
        tmp_path,
        POSTGRES_PASSWORD={"valueFrom": "/shop/POSTGRES_PASSWORD"},
        POSTGRES_MIGRATION_PASSWORD={"valueFrom": "/shop/POSTGRES_MIGRATION_PASSWORD"},
    )
    assert ecs.secret_region(found) is None
    with pytest.raises(DeployError) as refused:
        ecs.ecs_task_definitions(found)
    assert str(refused.value) == (
        "No AWS region for the logs: pass --region (the config's secrets name none in an ARN)."
    )
    assert ecs.ecs_task_definitions(found, "eu-north-1")["migrate"]["family"] == f"{NAME}-production-migrate"
