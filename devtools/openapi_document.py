"""Print or check the app's OpenAPI document, built as ``/openapi.json`` serves it (no database is needed).

``python -m devtools.openapi_document check`` validates it against the OpenAPI schema (``nox -s lint`` runs it);
``python -m devtools.openapi_document show`` prints it, for a client generator or a diff.
"""

from __future__ import annotations

import json
import sys

from project.errors import first_line

USAGE = "usage: python -m devtools.openapi_document check|show"


def document() -> dict:
    """Return the document the app serves at /openapi.json, from an app that never connects to a database."""
    from project import create_app

    app = create_app("testing", overrides={"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg2://nobody@localhost/none"})
    return app.test_client().get("/openapi.json").json


def check(spec: dict) -> str | None:
    """Return why ``spec`` is not a valid OpenAPI document, or None when it is."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    try:
        validate(spec)
    except OpenAPIValidationError as exc:
        where = "/".join(map(str, exc.absolute_path)) or "the document"
        return f"{where}: {first_line(exc.message)}"
    return None


def main(argv: list[str]) -> int:
    if argv not in (["check"], ["show"]):
        print(USAGE, file=sys.stderr)
        return 2
    spec = document()
    if argv == ["show"]:
        print(json.dumps(spec, indent=2, sort_keys=True))
        return 0
    problem = check(spec)
    operations = sum(1 for item in spec["paths"].values() for key in item if key != "parameters")
    print(
        f"/openapi.json is not valid OpenAPI: {problem}"
        if problem
        else f"/openapi.json: valid OpenAPI {spec['openapi']}, {operations} operations."
    )
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
