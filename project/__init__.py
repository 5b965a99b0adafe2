"""The Flask application package.

``create_app`` is imported lazily so that :mod:`project.configuration` (standard library only) can be
imported by the noxfile and by containers without Flask being installed.
"""


def create_app(config_name="development", overrides=None):
    """Create and configure an instance of the Flask application."""
    from project.app import create_app as _create_app

    return _create_app(config_name, overrides)
