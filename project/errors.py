"""The base of every user-facing mistake, and a helper to show driver errors in one line.

Standard library only: the config loader, the app and the development tooling all build on it.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix, told in one sentence; commands exit with code 2 on it."""

    exit_code = 2


def first_line(error: BaseException | None) -> str:
    """Return the first line of an error's message (drivers add hints and context on further lines)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
