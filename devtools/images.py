"""The base images, pinned to exact versions in ``docker/base-images/Dockerfile`` and read from there alone.

That file is never built: its ``FROM image AS name`` lines are the pins, in the form Dependabot updates. The
compose tasks export them to compose (``PYTHON_IMAGE``, ``POSTGRES_IMAGE``); the PostgreSQL image
follows the config's ``POSTGRES_MAJOR_VERSION``, so the server in the containers is the major every other
tool runs. ``python -m devtools.images python|debian|postgres [CONFIG]`` prints one, for a build by hand.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from devtools.errors import ComposeError

PINS_FILE = Path(__file__).resolve().parent.parent / "docker" / "base-images" / "Dockerfile"


def read_pins(path: Path = PINS_FILE) -> dict[str, str]:
    """Return ``{stage name: image}`` from the ``FROM image AS name`` lines of ``path``."""
    return dict((name, image) for image, name in re.findall(r"(?im)^FROM\s+(\S+)\s+AS\s+(\S+)\s*$", path.read_text()))


_PINS = read_pins()
PYTHON_IMAGE = _PINS["python"]
DEBIAN_IMAGE = _PINS["debian"]  # the reverse proxy's base (docker/proxy/Dockerfile)
# One exact release per PostgreSQL major the project can run.
POSTGRES_IMAGES = {
    name.removeprefix("postgres-"): image for name, image in _PINS.items() if name.startswith("postgres-")
}


def postgres_image(major: str) -> str:
    """Return the pinned PostgreSQL image of ``major``, or raise a ComposeError naming the majors pinned."""
    try:
        return POSTGRES_IMAGES[str(major)]
    except KeyError:
        known = ", ".join(POSTGRES_IMAGES)
        raise ComposeError(
            f"POSTGRES_MAJOR_VERSION is {major}, and docker/base-images/Dockerfile pins no postgres image for it "
            f"(pinned majors: {known}); add a postgres-{major} stage there."
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
