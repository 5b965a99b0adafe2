"""The deploy renders of one fixed config (tests/deploy-renders/production.json), kept as reviewed documents
beside it: tests/test_guards_renders.py fails when a render no longer writes exactly these.

After an intended change to a render, rewrite them and review the diff: ``python -m tests.deploy_renders``.
"""

from __future__ import annotations

import json
from pathlib import Path

from devtools.deploy import rendering
from project.configuration import Config, load_config
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "deploy-renders"
IMAGE = "registry.example.com/shopfront:1.2.3"
NAME = "shopfront"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/shopfront-execution"
REPLICAS = 3


def config(config_dir: Path = FIXTURES) -> Config:
    """The fixed config, read without the shell's environment."""
    return load_config("production", environ={}, config_dir=config_dir, require_secrets=False)


def config_with(config_dir: Path, **values: str) -> Config:
    """The fixed config with some plain values changed, written to ``config_dir`` (the renders read the file)."""
    entries = json.loads((FIXTURES / "production.json").read_text())
    entries = [{"name": e["name"], "value": values[e["name"]]} if e["name"] in values else e for e in entries]
    (config_dir / "production.json").write_text(json.dumps(entries))
    return config(config_dir)


def documents() -> dict[str, dict[str, dict]]:
    """Return every target's documents by file stem (the ECS region comes from the secrets' ARNs)."""
    fixed = config()
    return {
        "ecs": rendering.render(fixed, "ecs", IMAGE, name=NAME, execution_role=EXECUTION_ROLE),
        "kubernetes": rendering.render(fixed, "kubernetes", IMAGE, name=NAME, replicas=REPLICAS),
        "swarm": rendering.render(fixed, "swarm", IMAGE, name=NAME, replicas=REPLICAS),
    }


def main() -> None:
    for target, found in documents().items():
        for path in rendering.write(found, FIXTURES / target):
            print(f"Wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
