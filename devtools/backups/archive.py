"""What a ``pg_dump`` custom-format file says about itself, read from its header without any PostgreSQL program:
that it is a dump at all, which server major it was taken from and which ``pg_dump`` wrote it.

The layout is pg_dump's ``WriteHead`` (src/bin/pg_dump/pg_backup_archiver.c): the magic ``PGDMP``, the archive
format version (three bytes), the sizes of an integer and of an offset, the format (1 for custom), the
compression (an algorithm byte from format 1.15, an integer level before), the creation time as seven integers,
then the database name, the server's version and pg_dump's version as strings. An integer is a sign byte and
``int_size`` little-endian bytes; a string is an integer length (-1 for none) and that many bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from devtools.errors import DatabaseError

MAGIC = b"PGDMP"
CUSTOM_FORMAT = 1
HEADER_READ = 4096  # the header is a few hundred bytes; a longer one is not a dump


class NotADump(DatabaseError):
    """The file is not a pg_dump custom-format archive, or its header is cut short."""


@dataclass(frozen=True)
class ArchiveHeader:
    """The facts a dump's header holds."""

    format_version: tuple[int, int, int]
    database: str
    server_version: str
    dump_version: str

    @property
    def server_major(self) -> int:
        """Return the major version of the server the dump was taken from."""
        return major_of(self.server_version)

    @property
    def dump_major(self) -> int:
        """Return the major version of the pg_dump that wrote the file (pg_restore must be at least as new)."""
        return major_of(self.dump_version)


def major_of(version: str) -> int:
    """Return the major version in a PostgreSQL version string ("15.18 (Debian ...)" gives 15, "9.6.2" gives 9)."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not match:
        raise ValueError(version)
    return int(match.group(1))


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path, self.int_size = data, 0, path, 4

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise NotADump(f"{self.path} ends inside its header: it is truncated or not a dump.")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def integer(self) -> int:
        negative = self.byte()
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if negative else value

    def string(self) -> str:
        size = self.integer()
        if size < 0:
            return ""
        if size > HEADER_READ:
            raise NotADump(f"{self.path} has a damaged header (a {size}-byte name): it is not a usable dump.")
        return self.take(size).decode("utf-8", errors="replace")


def read_header(path: Path) -> ArchiveHeader:
    """Return the header of the custom-format dump ``path``, or raise NotADump with a sentence saying why not."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(HEADER_READ)
    except FileNotFoundError:
        raise NotADump(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise NotADump(
            f"{path} is a directory, not a dump file (only the custom format, `pg_dump -Fc`, is read)."
        ) from None
    except OSError as exc:
        raise NotADump(f"Cannot read {path}: {exc.strerror}.") from None
    if not data.startswith(MAGIC):
        raise NotADump(
            f"{path} is not a PostgreSQL dump in the custom format (it does not start with PGDMP); "
            "make one with `inv db.dump` or `pg_dump --format=custom`."
        )
    reader = _Reader(data, path)
    reader.take(len(MAGIC))
    version = (reader.byte(), reader.byte(), reader.byte())
    reader.int_size = reader.byte()
    if not 1 <= reader.int_size <= 8:
        raise NotADump(f"{path} has a damaged header (integer size {reader.int_size}): it is not a usable dump.")
    reader.byte()  # the size of a file offset
    if reader.byte() != CUSTOM_FORMAT:
        raise NotADump(f"{path} is a pg_dump archive but not in the custom format; only `pg_dump -Fc` files are read.")
    if version >= (1, 15, 0):
        reader.byte()  # the compression algorithm
    else:
        reader.integer()  # the compression level
    for _ in range(7):  # the creation time
        reader.integer()
    database = reader.string()
    server_version, dump_version = reader.string(), reader.string()
    try:
        major_of(server_version), major_of(dump_version)
    except ValueError:
        raise NotADump(f"{path} has a damaged header (versions {server_version!r}, {dump_version!r}).") from None
    return ArchiveHeader(version, database, server_version, dump_version)
