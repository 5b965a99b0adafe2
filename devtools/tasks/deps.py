"""``inv deps.*``: add, lock, upgrade and check the locked requirements (requirements/*.in -> *.txt)."""

from __future__ import annotations

from invoke import Collection, Exit

from devtools import cli
from devtools.cli import task


def _report(moves: list[str], nothing: str) -> None:
    for line in moves:
        print(line)
    print(nothing if not moves else "Review the changes above, run `nox -s tests lint`, and commit requirements/.")


@task(help={"package": "Upgrade only this package and what it needs (default: every package)"})
def upgrade(c, package=None):
    """Upgrade the pins; print old -> new and changelogs."""
    from devtools import dependencies

    _report(dependencies.upgrade(cli.ROOT, package), "Every pin is already at its newest allowed release.")


@task(
    help={
        "name": "Requirement to add: a name, optionally with a version and a marker (quote it)",
        "layer": "production (runs in production), testing (the test suite) or development (tools)",
    }
)
def add(c, name, layer):
    """Add a package to a layer and recompile."""
    from devtools import dependencies

    _report(dependencies.add(cli.ROOT, name, layer), "Added; nothing else moved.")


@task
def lock(c):
    """Recompile after an input was edited."""
    from devtools import dependencies

    _report(dependencies.lock(cli.ROOT), "The compiled files already match their inputs.")


@task
def check(c):
    """Fail when a compiled file does not match its input."""
    from devtools import dependencies

    problems = dependencies.check(cli.ROOT)
    if problems:
        print("".join(problems))
        raise Exit("Error: the compiled requirements do not match requirements/*.in; run `inv deps.lock`.", code=1)
    print("Every requirements/*.txt matches its input.")


ns = Collection("deps", upgrade, add, lock, check)
