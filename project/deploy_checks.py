"""Deployment checks in the spirit of Django's ``check --deploy``: what must hold before production serves.

Standard library only, so ``inv deploy.check`` and the app factory share it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from project.configuration import TRUE_WORDS, Config, display_path, read_entries

SECRET_KEY_MIN_LENGTH = 32
PLACEHOLDER_WORDS = ("change", "secret", "example", "default", "placeholder", "development", "testing", "xxx", "todo")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_KEY)", re.IGNORECASE)
INSECURE_SSLMODES = ("disable", "allow")
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def problems(values: Mapping[str, Any], config: Config | None = None) -> list[str]:
    """Return one sentence per deployment problem in ``values`` (and in ``config``'s file); empty when none."""
    found = []
    debug = str(values.get("FLASK_DEBUG", "false")).lower()
    if debug in TRUE_WORDS or values.get("DEBUG") is True:
        found.append('FLASK_DEBUG is on: production must never run the debugger; set it to "false".')
    key = str(values.get("SECRET_KEY") or "")
    if not key:
        found.append(f"SECRET_KEY is not set: export a random value ({GENERATE_KEY}).")
    elif len(key) < SECRET_KEY_MIN_LENGTH:
        found.append(f"SECRET_KEY is {len(key)} characters long; use at least {SECRET_KEY_MIN_LENGTH} random ones.")
    elif any(word in key.lower() for word in PLACEHOLDER_WORDS) or len(set(key)) < 10:
        found.append("SECRET_KEY looks like a placeholder, not a random value; generate a new one.")
    if str(values.get("SESSION_COOKIE_SECURE", "false")).lower() not in TRUE_WORDS:
        found.append('SESSION_COOKIE_SECURE is off: session cookies would travel over plain HTTP; set it to "true".')
    if not values.get("POSTGRES_PASSWORD"):
        found.append("POSTGRES_PASSWORD is empty: the database user needs a password in production.")
    if values.get("POSTGRES_SSLMODE") in INSECURE_SSLMODES:
        found.append(
            f"POSTGRES_SSLMODE is '{values['POSTGRES_SSLMODE']}': database traffic may travel unencrypted; "
            "use prefer, require, verify-ca or verify-full."
        )
    if config is not None:
        found += literal_secrets(config)
    return found


def literal_secrets(config: Config) -> list[str]:
    """Return a sentence for each secret-looking entry stored as a literal value in the config file."""
    where = display_path(config.path)
    return [
        f"{where}: {item['name']} looks like a secret but is stored as a literal 'value'; use 'valueFrom'."
        for item in read_entries(config.path)
        if "value" in item and SECRET_NAME.search(item["name"]) and item["value"]
    ]
