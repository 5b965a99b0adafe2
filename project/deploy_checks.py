"""Deployment checks in the spirit of Django's ``check --deploy``: what must hold before production serves.

Standard library only, so ``inv deploy.check`` and the app factory share it.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Mapping
from typing import Any

from project.configuration import ROLE_PASSWORDS, TRUE_WORDS, Config, display_path, read_entries

SECRET_KEY_MIN_LENGTH = 32
# An estimate of a key's randomness (see estimated_bits): a random 32-character URL-safe key scores about 145
# bits; a repeated or patterned one far less.
SECRET_KEY_MIN_BITS = 128
ZLIB_OVERHEAD = 8  # bytes of header and checksum in zlib's output
POSTGRES_PASSWORD_MIN_LENGTH = 16
ENCRYPTED_SSLMODES = ("require", "verify-ca", "verify-full")
PLACEHOLDER_WORDS = ("change", "secret", "example", "default", "placeholder", "development", "testing", "xxx", "todo")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|(^|_)KEY($|_))", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]*@")  # scheme://user:password@
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def problems(values: Mapping[str, Any], config: Config | None = None) -> list[str]:
    """Return one sentence per deployment problem in ``values`` (and in ``config``'s file); empty when none."""
    found = []
    for name in ("FLASK_DEBUG", "DEBUG"):  # DEBUG: Flask's own setting, as a config entry or a typed override
        if str(values.get(name, "false")).lower() in TRUE_WORDS:
            found.append(f'{name} is on: production must never run the debugger; set it to "false".')
    key = str(values.get("SECRET_KEY") or "")
    if not key:
        found.append(f"SECRET_KEY is not set: export a random value ({GENERATE_KEY}).")
    elif len(key) < SECRET_KEY_MIN_LENGTH:
        found.append(f"SECRET_KEY is {len(key)} characters long; use at least {SECRET_KEY_MIN_LENGTH} random ones.")
    elif any(word in key.lower() for word in PLACEHOLDER_WORDS) or len(set(key)) < 10:
        found.append("SECRET_KEY looks like a placeholder, not a random value; generate a new one.")
    elif estimated_bits(key) < SECRET_KEY_MIN_BITS:
        found.append(
            f"SECRET_KEY has about {estimated_bits(key):.0f} bits of randomness; use at least {SECRET_KEY_MIN_BITS} "
            f"({GENERATE_KEY})."
        )
    if str(values.get("SESSION_COOKIE_SECURE", "false")).lower() not in TRUE_WORDS:
        found.append('SESSION_COOKIE_SECURE is off: session cookies would travel over plain HTTP; set it to "true".')
    found += password_problems(values)
    sslmode = values.get("POSTGRES_SSLMODE")
    if sslmode not in ENCRYPTED_SSLMODES:
        said = f"is '{sslmode}'" if sslmode else "is not set"
        found.append(
            f"POSTGRES_SSLMODE {said}: libpq may then talk to the database in plain text; use require, or "
            "verify-full with the provider's CA certificate (PGSSLROOTCERT)."
        )
    if config is not None:
        found += literal_secrets(config)
    return found


def password_problems(values: Mapping[str, Any]) -> list[str]:
    """Return a sentence for the password of the database role this process connects as, when it is weak."""
    role = values.get("DATABASE_ROLE") or "app"
    name = ROLE_PASSWORDS.get(role, "POSTGRES_PASSWORD")
    password = str(values.get(name) or "")
    if not password:
        return [f"{name} is empty: the database role '{role}' needs a password in production."]
    if len(password) < POSTGRES_PASSWORD_MIN_LENGTH or len(set(password)) < 8:
        return [
            f"{name} is too weak ({len(password)} characters); use at least {POSTGRES_PASSWORD_MIN_LENGTH} random "
            f"ones ({GENERATE_KEY})."
        ]
    return []


def estimated_bits(key: str) -> float:
    """Estimate the randomness of ``key`` in bits: the lower of its length times its characters' Shannon entropy
    and the size it compresses to (which catches repeated patterns)."""
    if not key:
        return 0.0
    counts = Counter(key)
    shannon = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values()) * len(key)
    compressed = 8 * max(0, len(zlib.compress(key.encode(), 9)) - ZLIB_OVERHEAD)
    return min(shannon, compressed)


def literal_secrets(config: Config) -> list[str]:
    """Return a sentence for each secret-looking entry stored as a literal value in the config file, and for each
    literal value holding a URL with a password in it."""
    where = display_path(config.path)
    found = []
    for item in read_entries(config.path):
        if "value" not in item or not item["value"]:
            continue
        if SECRET_NAME.search(item["name"]):
            found.append(
                f"{where}: {item['name']} looks like a secret but is stored as a literal 'value'; use 'valueFrom'."
            )
        elif URL_WITH_PASSWORD.search(item["value"]):
            found.append(
                f"{where}: {item['name']} holds a URL with a password, which would be rendered in plain text; keep the "
                "password in a 'valueFrom' secret of its own."
            )
    return found
