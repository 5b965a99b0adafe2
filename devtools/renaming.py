"""Rename a project's references to itself in one file's text: its package, its database names, its project
name (compose projects, deployment names) and its development port, leaving prose alone (see devtools/new.py)."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

# The words after "<project name>-" that name one of its stacks or deployments (compose projects, ECS families,
# Kubernetes objects, log groups).
SUFFIXES = ("development", "production", "testing", "smoke")


@dataclass(frozen=True)
class Identity:
    """What a project calls itself outside its package and databases: its name and its development port."""

    name: str
    port: int


class Renamer:
    """Rename the package's references, the database names and the project's identity in one file's text,
    leaving prose alone."""

    def __init__(
        self,
        old_package: str,
        new_package: str,
        old_database: str,
        new_database: str,
        identities: tuple[Identity, Identity] | None = None,
    ):
        self.identity_rules = _identity_rules(*identities) if identities else []
        self.old_package = old_package
        self.new_package = new_package
        old, new = re.escape(old_package), new_package
        self.package_rules = [
            (re.compile(rf"(?<![\w.-]){old}(?=\.[A-Za-z_])"), new),  # module path
            (re.compile(rf"(?<![\w./-]){old}/( {{2,}})?"), self._path),  # path (not inside a URL), column kept
            (re.compile(rf"([\"'`]){old}\1"), rf"\g<1>{new}\g<1>"),  # quoted on its own
            (re.compile(rf"(\b(?:from|import)\s+){old}\b"), rf"\g<1>{new}"),  # code quoted in text
        ]
        self.word = re.compile(rf"(?<![\w.-]){old}(?![\w-])")
        db, new_db = re.escape(old_database), new_database
        value = r'",\s*"value":\s*"'
        self.database_rules = [
            (re.compile(rf"(?<!\w){db}_(dev|test)(?![a-z0-9])"), rf"{new_db}_\1"),
            (
                re.compile(rf'(POSTGRES_DB(?:{value}|:-|"\]\s*==\s*"|=)){db}(?![\w-])'),
                rf"\g<1>{new_db}",
            ),
            (re.compile(rf"(Database '){db}(')"), rf"\g<1>{new_db}\2"),
            (re.compile(rf"(secret:){db}/"), rf"\g<1>{new_db}/"),
            (re.compile(rf"(\bimage:\s*)(?:{db}|{old}):"), rf"\g<1>{new}:"),
        ]
        if old_package == new_package:
            self.package_rules = []
        if old_database == new_database:
            self.database_rules = self.database_rules[-1:] if old_package != new_package else []

    def _path(self, match: re.Match) -> str:
        """Rename a path; when spaces align a column after it (a layout listing), keep the column."""
        padding = match.group(1) or ""
        if padding:
            padding = " " * max(2, len(padding) + len(self.old_package) - len(self.new_package))
        return f"{self.new_package}/{padding}"

    def prose(self, text: str) -> str:
        """Rename module paths, paths and quoted names in free text (docs, configs, comments, strings)."""
        for pattern, replacement in self.package_rules:
            text = pattern.sub(replacement, text)
        return text

    def python(self, source: str) -> str:
        """Rename the package in Python code (every use of the name) and in its strings and comments."""
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        except (tokenize.TokenError, SyntaxError):
            return self.prose(source)
        starts = [0]
        for line in source.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        edits = []
        for tok in tokens:
            if tok.type == tokenize.NAME and tok.string == self.old_package:
                edits.append((tok.start, tok.end, self.new_package))
            elif tok.type in (tokenize.STRING, tokenize.COMMENT) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                renamed = self.prose(tok.string)
                if renamed != tok.string:
                    edits.append((tok.start, tok.end, renamed))
        for (row, col), (end_row, end_col), text in reversed(edits):
            start, end = starts[row - 1] + col, starts[end_row - 1] + end_col
            source = source[:start] + text + source[end:]
        return source

    def docker(self, text: str) -> str:
        """Rename the package in a Dockerfile or .dockerignore: outside comments the bare word is a path too."""
        lines = []
        for line in self.prose(text).splitlines(keepends=True):
            if self.package_rules and not line.lstrip().startswith("#"):
                line = self.word.sub(self.new_package, line)
            lines.append(line)
        return "".join(lines)

    def databases(self, text: str) -> str:
        """Rename the database names (and the production secret paths and the image built from the project)."""
        for pattern, replacement in self.database_rules:
            text = pattern.sub(replacement, text)
        return text

    def identity(self, text: str) -> str:
        """Rename the project's name where it prefixes a stack or deployment, and its development port."""
        for pattern, replacement in self.identity_rules:
            text = pattern.sub(replacement, text)
        return text

    def file(self, path: str, text: str) -> str:
        """Return ``text``, the content of the file at relative ``path``, with every rename applied."""
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".py"):
            text = self.python(text)
        elif name in ("Dockerfile", ".dockerignore") or name.endswith(".dockerfile"):
            text = self.docker(text)
        else:
            text = self.prose(text)
        return self.identity(self.databases(text))

    def path(self, path: str) -> str:
        """Return the relative ``path`` with the package directory renamed."""
        head, sep, rest = path.partition("/")
        return f"{self.new_package}/{rest}" if sep and head == self.old_package else path


def _identity_rules(old: Identity, new: Identity) -> list[tuple[re.Pattern, str]]:
    """Return the rules that move a project from the ``old`` identity to the ``new`` one."""
    name = re.escape(old.name)
    rules = [
        # pyproject.toml's [tool.devtools] name, the one setting everything below derives from.
        (re.compile(rf'(\[tool\.devtools\]\n(?:#.*\n)*name\s*=\s*"){name}(")'), rf"\g<1>{new.name}\2"),
        # A stack or deployment named after the project: app-development, /ecs/app-production, app-smoke-...
        (re.compile(rf"(?<![\w.-]){name}-(?=(?:{'|'.join(SUFFIXES)})\b)"), f"{new.name}-"),
        # Temporary directories and the cache: app-tests-pg-, app-postgres, ...
        (re.compile(rf"(?<![\w.-]){name}-(?=(?:postgres|pg|tests-pg|migrations-pg)\b)"), f"{new.name}-"),
    ]
    if old.port != new.port:
        rules.append((re.compile(rf"(?<!\d){old.port}(?!\d)"), str(new.port)))
    return rules
