"""The OS-level checks that keep other accounts out of a server: who runs it, what it may see of our environment,
and which directories and files are trusted.

PostgreSQL refuses to run as root, so under root the server runs as the unprivileged ``postgres`` OS user.
Directories under shared temporary paths are created atomically with mode 0700 and checked (owner, type, mode)
before reuse; private files are created new, never through a planted link.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from pathlib import Path

from devtools.errors import ClusterError

SERVER_OS_USER = "postgres"
# What the server processes may see of the caller's environment; everything else (secrets included) stays out.
SERVER_ENVIRON = ("PATH", "TZ", "TMPDIR")


def server_user() -> pwd.struct_passwd | None:
    """Return the OS user that runs the server: None for 'this user', the postgres user under root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise ClusterError(
            f"PostgreSQL refuses to run as root and there is no '{SERVER_OS_USER}' OS user to run it as: "
            f"create one (`useradd --system --user-group {SERVER_OS_USER}`) or run as an ordinary user."
        ) from None


def as_user(argv: list[str], os_user: pwd.struct_passwd | None) -> list[str]:
    """Return ``argv`` run as ``os_user`` (through Linux's runuser; as it is when None)."""
    if os_user is None:
        return argv
    if not shutil.which("runuser"):  # util-linux's; macOS and the BSDs have none
        raise ClusterError(
            "PostgreSQL refuses to run as root, and without runuser (Linux's util-linux) the tasks cannot start "
            f"it as the '{os_user.pw_name}' OS user here: run them as your own user."
        )
    return ["runuser", "-u", os_user.pw_name, "--", *argv]


def server_environ() -> dict[str, str]:
    """Return the environment the server processes get: a short allow-list, in the C locale."""
    environ = {k: os.environ[k] for k in SERVER_ENVIRON if k in os.environ}
    environ.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**environ, "LC_ALL": "C", "LANG": "C"}


def check_private_dir(path: Path, owners: set[int], shared_read: bool = False) -> None:
    """Refuse ``path`` unless it is a real directory (not a symlink) owned by one of ``owners`` that nobody else
    can write to (nor read, unless ``shared_read``): something another account planted is never used."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise ClusterError(f"{path} vanished while it was being set up; run the command again.") from None
    problem = None
    if stat.S_ISLNK(st.st_mode):
        problem = "a symbolic link"
    elif not stat.S_ISDIR(st.st_mode):
        problem = "not a directory"
    elif st.st_uid not in owners:
        problem = f"owned by uid {st.st_uid}, not by this user or the server's"
    elif st.st_mode & (0o022 if shared_read else 0o077):
        problem = f"open to other accounts (mode {stat.S_IMODE(st.st_mode):o})"
    if problem:
        raise ClusterError(
            f"Refusing to use {path}: it is {problem}, so another account may have planted it; "
            "remove it (or move it aside) and run the command again."
        )


def check_ancestors(path: Path) -> None:
    """Refuse ``path`` when a directory above it could let another account swap what lies below: one owned by
    another account (root aside), or writable by others without the sticky bit (which /tmp has)."""
    for parent in Path(path).absolute().parents:
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            continue
        open_to_others = st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX
        if st.st_uid not in (0, os.geteuid()) or open_to_others:
            raise ClusterError(
                f"Refusing to use {path}: {parent} above it is owned by uid {st.st_uid} with mode "
                f"{stat.S_IMODE(st.st_mode):o}, so another account could swap what it holds; use a directory under "
                "one only you (or root) can write to."
            )


def reachable_by(path: Path, user: pwd.struct_passwd | None) -> bool:
    """Tell whether ``user`` can traverse every directory above ``path`` (always true for ourselves)."""
    if user is None:
        return True
    for parent in path.resolve().parents:
        try:
            st = parent.stat()
        except FileNotFoundError:
            continue  # created later by us, with the default mode
        except OSError:
            return False
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.pw_gid or user.pw_name in group_members(st.st_gid):
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def group_members(gid: int) -> list[str]:
    """Return the names of group ``gid``'s listed members (none for an unknown group)."""
    try:
        return grp.getgrgid(gid).gr_mem
    except KeyError:
        return []


def write_private(path: Path, text: str, owner: pwd.struct_passwd | None = None) -> None:
    """Write ``text`` to a new file only its owner can read (refusing to follow or replace anything planted)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
