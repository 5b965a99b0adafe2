"""The development tooling: the local PostgreSQL, database administration, migrations, scenarios, compose,
config exports and the production simulation.

It is never shipped (the image copies only ``project/``) and ``project`` never imports it; the arrow points
one way, checked by import-linter in ``nox -s lint``. ``tasks.py`` is its command line.
"""
