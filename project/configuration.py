"""Load ``config/<name>.json``, the project's one source of configuration.

Every entry point (tasks, noxfile, wsgi, gunicorn, containers) reads its settings through
:func:`load_config`, so this module needs nothing beyond the standard library.

A config file is a list of entries in the ECS container-definition format::

    [{"name": "POSTGRES_DB", "value": "app"},
     {"name": "SECRET_KEY", "valueFrom": "arn:aws:secretsmanager:...:SECRET_KEY"}]

Precedence, highest first:

1. a variable of the same name already set in the process environment
   (``POSTGRES_PORT=6000 inv dev`` overrides the file for that run; ``inv config.show`` says so);
2. the entry's ``value`` in the file.

A ``valueFrom`` entry is a secret: the file only says where the secret lives in production, and
locally its value comes from the environment variable of the same name. It is never a literal
in the file, and loading fails with a sentence when it is not set.

``APPLICATION_CONFIG`` picks the file (default ``development``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from project.errors import UserError

DEFAULT_CONFIG = "development"
CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CONFIG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

# Typed settings: validated when a file is loaded, so a bad value is reported with its file.
INTEGER_SETTINGS = {
    "POSTGRES_PORT": (0, 65535),
    "POSTGRES_CONNECT_TIMEOUT": (1, 300),
    "USERS_PER_PAGE_MAX": (1, 10000),
    "MAX_CONTENT_LENGTH": (1, 1 << 30),
    "PROXY_FIX_X_FOR": (0, 10),
    "GUNICORN_WORKERS": (0, 64),
    "GUNICORN_THREADS": (1, 64),
    "GUNICORN_TIMEOUT": (1, 3600),
    "GUNICORN_GRACEFUL_TIMEOUT": (1, 3600),
    "POSTGRES_MAJOR_VERSION": (10, 99),
}
BOOLEAN_SETTINGS = {"FLASK_DEBUG", "DEBUG", "SESSION_COOKIE_SECURE", "API_DOCS"}
CHOICE_SETTINGS = {
    "FLASK_CONFIG": ("development", "testing", "production"),
    "POSTGRES_SSLMODE": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "LOG_LEVEL": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "DATABASE_ROLE": ("app", "migration"),
    # libpq's require_auth: the only authentication the client accepts (empty: whatever the server asks).
    "POSTGRES_REQUIRE_AUTH": ("scram-sha-256", "!password", "md5", "gss", "sspi", "password", "none"),
    "LOG_FORMAT": ("json", "text"),
}
# Settings with a shape: (pattern, what a valid value looks like).
PATTERN_SETTINGS = {
    "METRICS_BIND": (
        re.compile(r"|(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(?P<port>[0-9]{1,5})"),
        'empty (no metrics endpoint) or HOST:PORT such as "127.0.0.1:9464"',
    ),
}
# Settings that would bypass the POSTGRES_* ones the checks and renders look at (a URL carries its password in plain
# text and its own sslmode), so a config may not hold them.
_ONE_SOURCE = (
    "the POSTGRES_* settings the deploy checks read; the database is configured by those entries (passwords as "
    "'valueFrom' secrets): remove it."
)
REFUSED_SETTINGS = {
    "SQLALCHEMY_DATABASE_URI": f"a connection URL would win over {_ONE_SOURCE}",
    "SQLALCHEMY_BINDS": f"extra connection URLs would bypass {_ONE_SOURCE}",
}
OPTIONAL_CHOICES = {"POSTGRES_REQUIRE_AUTH"}  # settings whose empty value means "not set"
# Each database role's password: a process connects as one role (DATABASE_ROLE), so it needs that role's secret
# and never the other's (the web process never holds the password of the role that owns the tables).
ROLE_PASSWORDS = {"app": "POSTGRES_PASSWORD", "migration": "POSTGRES_MIGRATION_PASSWORD"}
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


class ConfigError(UserError):
    """A configuration mistake, told in one sentence; tasks exit with code 2 on it."""


@dataclass(frozen=True)
class Entry:
    """One setting: its value and where that value came from."""

    name: str
    value: str | None
    source: str  # "file", "environment", "override" (set by code), or "unset" (a secret with no value yet)
    value_from: str | None = None

    @property
    def secret(self) -> bool:
        return self.value_from is not None


@dataclass(frozen=True)
class Config(Mapping[str, str]):
    """The effective settings of one config file, read-only, in file order."""

    name: str
    path: Path
    entries: tuple[Entry, ...]

    def _resolved(self) -> dict[str, str]:
        return {e.name: e.value for e in self.entries if e.value is not None}

    def __getitem__(self, key: str) -> str:
        return self._resolved()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())

    def entry(self, name: str) -> Entry:
        """Return the entry called ``name``."""
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def environ(self) -> dict[str, str]:
        """Variables for a child process: every resolved setting plus APPLICATION_CONFIG."""
        return {**self._resolved(), "APPLICATION_CONFIG": self.name}

    def display_path(self) -> str:
        return display_path(self.path)

    def secrets(self) -> tuple[str, ...]:
        """Return the names of the secret (valueFrom) entries."""
        return tuple(e.name for e in self.entries if e.secret)

    def replace(self, **values: str) -> Config:
        """Return a copy with some settings replaced (source "override"); unknown names are added."""
        entries = [
            Entry(e.name, str(values[e.name]), "override", e.value_from) if e.name in values else e
            for e in self.entries
        ]
        known = {e.name for e in self.entries}
        entries += [Entry(k, str(v), "override") for k, v in values.items() if k not in known]
        return Config(name=self.name, path=self.path, entries=tuple(entries))


def display_path(path: Path) -> str:
    """Show ``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def config_name(environ: Mapping[str, str] | None = None) -> str:
    """Return the config name that APPLICATION_CONFIG selects (default ``development``)."""
    environ = os.environ if environ is None else environ
    return environ.get("APPLICATION_CONFIG") or DEFAULT_CONFIG


def available_configs(config_dir: Path | None = None) -> list[str]:
    """Return the names of the config files in ``config_dir``."""
    config_dir = CONFIG_DIR if config_dir is None else config_dir
    return sorted(p.stem for p in config_dir.glob("*.json"))


def config_path(name: str, config_dir: Path | None = None) -> Path:
    """Return the path of config ``name``, or raise ConfigError listing the valid names."""
    config_dir = CONFIG_DIR if config_dir is None else config_dir
    names = available_configs(config_dir)
    valid = ", ".join(names) or "none: the folder has no .json file"
    if not _CONFIG_NAME.fullmatch(name):
        raise ConfigError(f"'{name}' is not a config name; available configs: {valid}.")
    path = config_dir / f"{name}.json"
    if not path.is_file():
        raise ConfigError(
            f"There is no config '{name}' ({display_path(path)} does not exist); available configs: {valid}."
        )
    return path


def read_entries(path: Path) -> list[dict[str, str]]:
    """Parse and validate a config file's structure, without looking at the environment."""
    where = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: is not UTF-8 text.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except RecursionError:
        raise ConfigError(f"{where}: the JSON is nested too deeply; a config is a flat list of entries.") from None
    if not isinstance(data, list):
        raise ConfigError(
            f'{where}: the file must hold a JSON list of {{"name": ..., "value": ...}} entries, '
            f"not a JSON {_json_type(data)}."
        )
    seen: dict[str, int] = {}
    for number, item in enumerate(data, start=1):
        _check_entry(where, number, item, seen)
    return data


def _check_entry(where: str, number: int, item: object, seen: dict[str, int]) -> None:
    label = f"{where}: entry {number}"
    if not isinstance(item, dict):
        raise ConfigError(
            f'{label} must be an object like {{"name": "X", "value": "..."}}, not a JSON {_json_type(item)}.'
        )
    if "name" not in item:
        raise ConfigError(f"{label} has no 'name'.")
    name = item["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"{label}: 'name' must be an environment variable name (letters, digits, underscores), got {_show(name)}."
        )
    label = f"{where}: entry {number} ({name})"
    unknown = sorted(set(item) - {"name", "value", "valueFrom"})
    if unknown:
        raise ConfigError(
            f"{label} has an unknown key '{unknown[0]}'; an entry has 'name' and either 'value' or 'valueFrom'."
        )
    has_value, has_from = "value" in item, "valueFrom" in item
    if has_value == has_from:
        kind = "both 'value' and 'valueFrom'" if has_value else "neither 'value' nor 'valueFrom'"
        raise ConfigError(f"{label} has {kind}; give exactly one ('valueFrom' for a secret).")
    key = "value" if has_value else "valueFrom"
    if not isinstance(item[key], str):
        hint = f' (write "{item[key]}")' if isinstance(item[key], (int, float, bool)) else ""
        raise ConfigError(
            f"{label}: '{key}' must be a string, as ECS requires, not a JSON {_json_type(item[key])}{hint}."
        )
    if has_from and not item["valueFrom"]:
        raise ConfigError(
            f"{label}: 'valueFrom' is empty; name where the secret is stored (an ARN, or the variable name)."
        )
    if name in REFUSED_SETTINGS:
        raise ConfigError(f"{label}: {REFUSED_SETTINGS[name]}")
    if name in seen:
        raise ConfigError(f"{label} repeats the name '{name}' of entry {seen[name]}; each name may appear once.")
    seen[name] = number
    if has_value:
        check_value(label, name, item["value"])


def check_value(label: str, name: str, value: str) -> None:
    """Raise ConfigError when a typed setting's value is not valid."""
    if name in INTEGER_SETTINGS:
        low, high = INTEGER_SETTINGS[name]
        if not re.fullmatch(r"[0-9]+", value) or not low <= int(value) <= high:
            raise ConfigError(f"{label}: {_show(value)} is not valid; {name} is a whole number from {low} to {high}.")
    elif name in BOOLEAN_SETTINGS:
        if value.lower() not in TRUE_WORDS + FALSE_WORDS:
            raise ConfigError(f'{label}: {_show(value)} is not valid; {name} is "true" or "false".')
    elif name in CHOICE_SETTINGS:
        if value not in CHOICE_SETTINGS[name] and not (value == "" and name in OPTIONAL_CHOICES):
            empty = " or empty" if name in OPTIONAL_CHOICES else ""
            raise ConfigError(
                f"{label}: {_show(value)} is not valid; {name} is one of {', '.join(CHOICE_SETTINGS[name])}{empty}."
            )
    elif name in PATTERN_SETTINGS:
        pattern, valid = PATTERN_SETTINGS[name]
        match = pattern.fullmatch(value)
        if not match or (match["port"] and not 1 <= int(match["port"]) <= 65535):
            raise ConfigError(f"{label}: {_show(value)} is not valid; {name} is {valid}.")


def load_config(
    name: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_dir: Path | None = None,
    require_secrets: bool = True,
) -> Config:
    """Load config ``name`` (default: APPLICATION_CONFIG, else development) with its precedence applied.

    With ``require_secrets=False`` an unset secret is kept with value None instead of failing,
    for commands that describe a config rather than run it (show, check, export).
    """
    environ = os.environ if environ is None else environ
    name = config_name(environ) if name is None else name
    path = config_path(name, config_dir)
    where = display_path(path)
    items = read_entries(path)
    role = environ.get("DATABASE_ROLE") or next((i.get("value") for i in items if i["name"] == "DATABASE_ROLE"), "app")
    other_roles = {secret for r, secret in ROLE_PASSWORDS.items() if r != role}
    entries = []
    for number, item in enumerate(items, start=1):
        key, value_from = item["name"], item.get("valueFrom")
        label = f"{where}: entry {number} ({key})"
        if key in environ:
            value, source = environ[key], "environment"
            check_value(f"{label}, from the environment variable {key}", key, value)
        elif value_from is None:
            value, source = item["value"], "file"
        else:
            value, source = None, "unset"
        if value_from is not None and not value:
            if require_secrets and key not in other_roles:
                raise ConfigError(
                    f"{label} is a secret (valueFrom) and the environment variable {key} is not set; "
                    f"export {key}=... before running with the '{name}' config."
                )
            value, source = None, "unset"
        entries.append(Entry(key, value, source, value_from))
    return Config(name=name, path=path, entries=tuple(entries))


def as_bool(value: str) -> bool:
    """Return the boolean a validated config value stands for."""
    return value.strip().lower() in TRUE_WORDS


def check_configs(config_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """Validate every config file; return (errors, warnings) as sentences.

    Errors are files that do not load; warnings are names present in one config and missing from another.
    """
    config_dir = CONFIG_DIR if config_dir is None else config_dir
    errors: list[str] = []
    names: dict[str, set[str]] = {}
    for config in available_configs(config_dir):
        try:
            names[config] = {e["name"] for e in read_entries(config_dir / f"{config}.json")}
        except ConfigError as exc:
            errors.append(str(exc))
    if not names and not errors:
        errors.append(f"{display_path(config_dir)} holds no config file (NAME.json).")
    every = set().union(*names.values()) if names else set()
    warnings = []
    for config, present in sorted(names.items()):
        for missing in sorted(every - present):
            others = sorted(c for c, n in names.items() if missing in n)
            warnings.append(f"config/{config}.json has no {missing}, which {', '.join(others)} define(s).")
    return errors, warnings


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", int: "number", float: "number"}.get(type(value), "value")


def _show(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def main(argv: list[str] | None = None) -> int:
    """``python -m project.configuration [check | show NAME]``: validate or print configs (for nox and containers)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["show"] and len(args) <= 2:
            config = load_config(args[1] if len(args) == 2 else None, require_secrets=False)
            for entry in config.entries:
                print(f"{entry.name}={'********' if entry.secret else entry.value}")
            return 0
        if args in ([], ["check"]):
            errors, warnings = check_configs()
            for line in warnings:
                print(f"warning: {line}")
            for line in errors:
                print(f"error: {line}", file=sys.stderr)
            if not errors:
                print(f"{len(available_configs())} config files valid: {', '.join(available_configs())}.")
            return 2 if errors else 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print("usage: python -m project.configuration [check | show [NAME]]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
