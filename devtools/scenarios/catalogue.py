"""The scenario modules in ``scenarios/``: their names, and each imported as a :class:`Scenario`."""

from __future__ import annotations

import importlib.util
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from devtools.errors import ScenarioError

SCENARIO_DIR = Path(__file__).resolve().parent.parent.parent / "scenarios"
DEFAULT_SIZE = 100
DEFAULT_SEED = 1
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    default_size: int
    module: ModuleType

    def fill(self, connection, *, size: int | None = None, rng: random.Random | None = None) -> None:
        """Fill ``connection``'s database with this scenario's data."""
        size = self.default_size if size is None else size
        self.module.fill(connection, size=size, rng=rng or random.Random(DEFAULT_SEED))


def available(directory: Path | None = None) -> list[str]:
    """Return the names of the scenarios in ``directory`` (default: scenarios/)."""
    directory = directory or SCENARIO_DIR
    return sorted(p.stem for p in directory.glob("*.py") if NAME.match(p.stem))


def get(name: str, directory: Path | None = None) -> Scenario:
    """Import scenario ``name``, or raise a ScenarioError listing the available ones."""
    directory = directory or SCENARIO_DIR
    names = available(directory)
    if name not in names:
        raise ScenarioError(f"There is no scenario '{name}'; available scenarios: {', '.join(names) or 'none'}.")
    path = directory / f"{name}.py"
    module_name = f"scenarios.{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    if not callable(getattr(module, "fill", None)):
        raise ScenarioError(f"{path.name} has no fill(connection, *, size, rng) function.")
    description = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else "(no description)"
    return Scenario(name, description, int(getattr(module, "DEFAULT_SIZE", DEFAULT_SIZE)), module)
