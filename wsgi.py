"""The WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi run``.

The config file is chosen by APPLICATION_CONFIG (default development), read by the one loader.
"""

from project import create_app
from project.configuration import load_config

config = load_config()
app = create_app(config["FLASK_CONFIG"], overrides=config)
