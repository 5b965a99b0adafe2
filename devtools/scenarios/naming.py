"""The names of a scenario's databases under one config, and their ownership mark: one place builds them all."""

from __future__ import annotations

from dataclasses import dataclass

from devtools.databases import check_name, owner_mark
from project.configuration import Config


@dataclass(frozen=True)
class ScenarioNames:
    """Scenario ``name``'s databases under one config, with their ownership mark: the database, the template
    ``reset`` restores, the spare copy of it the next ``reset`` swaps in, the name the swapped-out database
    has until the background refill drops it, and the name of a copy a ``reset`` makes when no spare is ready."""

    database: str
    template: str
    spare: str
    trash: str
    fresh: str
    mark: str

    @classmethod
    def of(cls, config: Config, name: str) -> ScenarioNames:
        """Return scenario ``name``'s names under ``config`` (checked to fit PostgreSQL's limit)."""
        database = f"{config['POSTGRES_DB']}_scenario_{name}"
        check_name(f"{database}_template")  # the longest of them
        return cls(
            database,
            f"{database}_template",
            f"{database}_spare",
            f"{database}_trash",
            f"{database}_fresh",
            owner_mark(config.name, scenario=name),
        )
