"""A cluster's credentials: the superuser's passfile (written for exactly the cluster's addresses), a new password
for a server made from a copy of another's data directory, and the server's TLS certificate."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from devtools.postgres.safety import write_private

REQUIRE_AUTH = "scram-sha-256"  # what the clusters' pg_hba asks for; libpq refuses a server asking anything else


def write_passfile(path: Path, hosts: list[str], port: int, user: str, password: str) -> None:
    """Write a 0600 passfile with one line per host (a TCP address or a socket directory), replaced in one step."""
    fields = (str(port), "*", user, password)
    lines = [":".join(passfield(f) for f in (host, *fields)) for host in hosts]
    staging = path.with_name(f".{path.name}-{secrets.token_hex(8)}")
    write_private(staging, "".join(line + "\n" for line in lines))
    os.replace(staging, path)


def new_password(params: dict, user: str) -> str:
    """Give ``user`` a new random password on the server ``params`` connect to; return it."""
    import psycopg2  # here: only the clusters made from a copy need it
    from psycopg2 import sql

    password = secrets.token_urlsafe(32)
    with contextlib.closing(psycopg2.connect(**params, require_auth=REQUIRE_AUTH)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("SET log_statement = 'none'")  # the new password stays out of the server log
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(user)), (password,))
    return password


def passfield(text: str) -> str:
    """Escape a field of a libpq passfile."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def passfile_password(text: str) -> str:
    """Return the password of a passfile's first line (its fifth field, unescaped)."""
    fields = re.split(r"(?<!\\):", text.splitlines()[0], maxsplit=4)
    return re.sub(r"\\(.)", r"\1", fields[4])


def make_certificate(data_dir: Path, execute: Callable[[str, list[str]], object]) -> None:
    """Write a self-signed certificate and its 0600 key into ``data_dir``, running openssl through ``execute``
    (as the server user)."""
    key, cert = data_dir / "server.key", data_dir / "server.crt"
    command = [
        *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
        *("-days", "3650", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        *("-keyout", str(key), "-out", str(cert)),
    ]
    execute("openssl", command)
    execute("chmod", ["chmod", "0600", str(key)])
