"""The base images, pinned to exact versions here and nowhere else.

The compose tasks export them to compose (``PYTHON_IMAGE``, ``POSTGRES_IMAGE``); the PostgreSQL image
follows the config's ``POSTGRES_MAJOR_VERSION``, so the server in the containers is the major every other
tool runs. ``python -m devtools.images python|debian|postgres [CONFIG]`` prints one, for a build by hand.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from devtools.errors import ComposeError

PYTHON_IMAGE = "python:3.11.14-slim-bookworm"
DEBIAN_IMAGE = "debian:bookworm-20251117-slim"  # the reverse proxy's base (docker/proxy/Dockerfile)
# One exact release per PostgreSQL major the project can run; add a line before raising the setting.
POSTGRES_IMAGES = {
    "15": "postgres:15.18-bookworm",
    "16": "postgres:16.14-bookworm",
    "17": "postgres:17.10-bookworm",
    "18": "postgres:18.6-bookworm",
}


def postgres_image(major: str) -> str:
    """Return the pinned PostgreSQL image of ``major``, or raise a ComposeError naming the majors pinned."""
    try:
        return POSTGRES_IMAGES[str(major)]
    except KeyError:
        known = ", ".join(POSTGRES_IMAGES)
        raise ComposeError(
            f"POSTGRES_MAJOR_VERSION is {major}, and devtools/images.py pins no postgres image for it "
            f"(pinned majors: {known}); add one there."
        ) from None


def image_environ(config: Mapping[str, str]) -> dict[str, str]:
    """Return the image variables the compose files read, for ``config``."""
    major = config.get("POSTGRES_MAJOR_VERSION", "18")
    return {
        "PYTHON_IMAGE": PYTHON_IMAGE,
        "DEBIAN_IMAGE": DEBIAN_IMAGE,
        "POSTGRES_IMAGE": postgres_image(major),
        "POSTGRES_VOLUME": postgres_volume(major),
    }


def postgres_volume(major: str) -> str:
    """Return where the postgres image of ``major`` keeps its data volume: from 18 on the image declares
    /var/lib/postgresql and keeps each major's data in a directory of its own there (18/docker)."""
    return "/var/lib/postgresql" if int(major) >= 18 else "/var/lib/postgresql/data"


def main(argv: list[str]) -> int:
    from project.configuration import load_config
    from project.errors import UserError

    if not argv or argv[0] not in ("python", "debian", "postgres") or len(argv) > 2:
        print("usage: python -m devtools.images python|debian|postgres [CONFIG]", file=sys.stderr)
        return 2
    if argv[0] != "postgres":
        print(PYTHON_IMAGE if argv[0] == "python" else DEBIAN_IMAGE)
        return 0
    try:
        config = load_config(argv[1] if len(argv) == 2 else None, require_secrets=False)
        print(postgres_image(config["POSTGRES_MAJOR_VERSION"]))
    except UserError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
