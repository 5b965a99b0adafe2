"""Scenarios: named sandbox databases built from empty, migrated, and filled by ``scenarios/<name>.py``.

A scenario module has a docstring (its description), an optional ``DEFAULT_SIZE`` and one function::

    def fill(connection, *, size, rng): ...

``connection`` is a SQLAlchemy Connection inside a transaction on a freshly migrated database, ``rng`` a
``random.Random`` seeded from ``--seed`` so the same seed gives the same data. :func:`copy_rows` loads rows
in bulk with COPY.

The package by job: ``catalogue`` finds and imports the scenario modules, ``naming`` names a scenario's
databases, ``copying`` is the COPY loader, ``runner`` loads, resets, lists and drops them, and ``spares`` makes
the spare copy a reset swaps in, in a forked background process.
"""

from devtools.scenarios.copying import copy_rows

__all__ = ["copy_rows"]
