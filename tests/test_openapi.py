"""The OpenAPI document, the docs page and request validation: the setup's, not the example resource's.

The request-validation tests use a blueprint and a schema of their own, so replacing the example API breaks none
of them; the document tests read whatever routes the app has.
"""

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import marshmallow as ma
import pytest
from flask import Flask
from openapi_spec_validator import validate

from devtools.contract import schemathesis_command, serving
from project import create_app, openapi
from project.api import errors

NO_DATABASE = {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://nobody@127.0.0.1:1/none"}
# Routes that serve the documentation itself rather than the API.
# The title names the package: "Project API" here, "Corner shop API" in a project made with --package corner_shop.
TITLE = f"{create_app.__module__.split('.')[0].replace('_', ' ').capitalize()} API"
NOT_API = {"static", "api-docs.openapi_json", "docs.show"}


def app_without_database(**settings):
    return create_app("testing", overrides={**NO_DATABASE, **settings})


class Greeting(ma.Schema):
    error_summary = "The greeting is not valid."

    class Meta:
        unknown = ma.RAISE

    error_messages = {"unknown": "is not a field of a greeting.", "type": "Send the greeting as a JSON object."}
    word = ma.fields.String(
        required=True, validate=ma.validate.Length(max=5), error_messages={"required": "is missing."}
    )
    times = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=3))


@pytest.fixture(scope="module")
def toy():
    """An app with one validated operation, documented and answered as the project's app does."""
    blueprint = openapi.Blueprint("greetings", __name__, url_prefix="/greetings")

    @blueprint.post("")
    @blueprint.arguments(Greeting)
    @blueprint.alt_response(200, schema=Greeting, success=True)
    def greet(greeting):
        """Repeat a word."""
        return greeting

    app = Flask("toy")
    app.config["MAX_CONTENT_LENGTH"] = 64
    openapi.register(app, [blueprint])
    errors.register(app)
    return app.test_client()


def test_the_document_validates_and_describes_every_route_of_the_app():
    app = app_without_database()
    document = app.test_client().get("/openapi.json").json
    validate(document)
    documented = {
        (re.sub(r"\{(\w+)\}", r"<\1>", path), method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }
    routes = {
        (re.sub(r"<\w+:(\w+)>", r"<\1>", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in NOT_API
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routes and documented == routes


def test_every_documented_error_has_the_error_body():
    document = app_without_database().test_client().get("/openapi.json").json
    components = document["components"]["responses"]
    error_statuses = set()
    for item in document["paths"].values():
        for method, operation in item.items():
            for status, response in operation.get("responses", {}).items() if method != "parameters" else ():
                if int(status) >= 400:
                    error_statuses.add(status)
                    response = components[response["$ref"].rsplit("/", 1)[-1]] if "$ref" in response else response
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert error_statuses
    assert set(document["components"]["schemas"]["Error"]["required"]) == {"error", "status", "message"}


def test_no_operation_has_a_catch_all_response():
    document = app_without_database().test_client().get("/openapi.json").json
    operations = [op for item in document["paths"].values() for key, op in item.items() if key != "parameters"]
    assert operations and not [op for op in operations if "default" in op["responses"]]


def test_the_document_is_titled_after_the_package():
    document = app_without_database().test_client().get("/openapi.json").json
    assert document["info"]["title"] == TITLE and document["openapi"].startswith("3.")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"word": "is missing."}),
        ({"word": "toolong"}, {"word": "Longer than maximum length 5."}),
        (
            {"word": "hi", "times": 9, "x": 1},
            {
                "times": "Must be greater than or equal to 1 and less than or equal to 3.",
                "x": "is not a field of a greeting.",
            },
        ),
    ],
)
def test_a_bad_body_gets_a_400_with_one_sentence_per_field(toy, body, fields):
    response = toy.post("/greetings", json=body)
    assert response.status_code == 400
    assert {k: v for k, v in response.json.items() if k != "request_id"} == {
        "error": "Bad Request",
        "status": 400,
        "message": "The greeting is not valid.",
        "fields": fields,
    }


def test_a_valid_body_reaches_the_view(toy):
    assert toy.post("/greetings", json={"word": "hi"}).json == {"word": "hi", "times": 1}


@pytest.mark.parametrize(
    ("data", "content_type", "status", "message"),
    [
        (
            '{"word": "hi"}',
            "text/plain",
            415,
            "Send the body as JSON with the header 'Content-Type: application/json'.",
        ),
        ("{not json", "application/json", 400, "The request body is not valid JSON."),
        ("", "application/json", 400, "The request body is not valid JSON."),
        ("[" * 50_000, "application/json", 400, "The request body is nested too deeply."),
        ('["hi"]', "application/json", 400, "Send the greeting as a JSON object."),
    ],
)
def test_a_body_that_is_not_a_json_object_is_named_in_the_message(toy, data, content_type, status, message):
    toy.application.config["MAX_CONTENT_LENGTH"] = None
    try:
        response = toy.post("/greetings", data=data, content_type=content_type)
    finally:
        toy.application.config["MAX_CONTENT_LENGTH"] = 64
    assert (response.status_code, response.json["message"]) == (status, message)
    assert "fields" not in response.json


def test_a_body_over_the_limit_is_a_json_413(toy):
    response = toy.post("/greetings", json={"word": "x" * 100})
    assert response.status_code == 413 and response.json["status"] == 413


def test_the_docs_page_is_off_unless_configured():
    assert app_without_database().test_client().get("/docs/").status_code == 404
    assert app_without_database(API_DOCS="true").test_client().get("/docs/").status_code == 200


def test_the_docs_page_names_the_project_and_allows_only_its_own_inline_script():
    client = app_without_database(API_DOCS="true").test_client()
    response = client.get("/docs/")
    html = response.get_data()
    assert f"<title>{TITLE}</title>".encode() in html
    policy = response.headers["Content-Security-Policy"]
    scripts = re.findall(rb"<script>(.*?)</script>", html, re.DOTALL)
    assert scripts
    for script in scripts:
        assert f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    with client.get("/docs/swagger-ui-bundle.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    not chromium() and not os.environ.get("CI"), reason="headless Chromium is not installed (apt-get install chromium)"
)
def test_the_docs_page_renders_every_operation_in_headless_chromium():
    app = app_without_database(API_DOCS="true")
    document = app.test_client().get("/openapi.json").json
    with serving(app) as base_url, tempfile.TemporaryDirectory(prefix="project-chromium-") as profile:
        result = subprocess.run(
            [
                chromium() or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{base_url}/docs/",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    dom = result.stdout
    assert TITLE in dom, result.stderr[-2000:]
    rendered = set(re.findall(r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]+)"', dom, re.DOTALL))
    expected = {(method, path) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert expected and rendered == expected


def test_schemathesis_fails_an_app_whose_answers_the_document_does_not_describe(tmp_path):
    blueprint = openapi.Blueprint("teapots", __name__, url_prefix="/teapots")

    @blueprint.get("")
    @blueprint.alt_response(200, schema=Greeting, success=True)
    def brew():
        """Answer with a status the document does not list."""
        return {"error": "I'm a teapot"}, 418

    app = Flask("teapot")
    openapi.register(app, [blueprint])
    with serving(app) as base_url:
        command = schemathesis_command(base_url, ["--max-examples=5", "--phases=examples,fuzzing"])
        # In a directory of its own: schemathesis keeps the failures it found there, to replay them next time.
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert result.returncode != 0
    assert "Undocumented status code" in result.stdout, result.stdout[-3000:]


def test_the_lint_check_names_what_makes_a_document_invalid():
    from devtools.openapi_document import check

    assert check({"openapi": "3.0.3", "info": {"title": "t", "version": "1"}, "paths": {}}) is None
    problem = check({"openapi": "3.0.3", "info": {"title": "t"}, "paths": {}})
    assert problem and "version" in problem and "\n" not in problem


def test_the_lint_command_checks_the_apps_document_and_refuses_other_words(capsys):
    from devtools.openapi_document import main

    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("/openapi.json: valid OpenAPI 3.0.3,")
    assert main(["fix"]) == 2
    assert "usage:" in capsys.readouterr().err
