"""Files that appear whole or not at all: written under a hidden temporary name beside their final one (mode 0600)
and linked to it only once complete. Standard library only: the smoke check uses it too."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from devtools.errors import DatabaseError

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
BACKUP_DIR = PROJECT_ROOT / ".local" / "backups"  # git-ignored with the rest of .local/


@contextlib.contextmanager
def written_atomically(path: Path):
    """Yield a new hidden file (mode 0600) beside ``path`` to write; once the block succeeds it appears under
    ``path`` (never replacing a file there), else it is deleted: ``path`` never names a partial file."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            raise DatabaseError(f"{path} appeared while the dump ran; the dump was not kept.") from None
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        partial.unlink(missing_ok=True)
