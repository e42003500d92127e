"""The two ways a command fails: bad input (exit 2) and a failure during the run (exit 1)."""

from __future__ import annotations

import errno
from pathlib import Path


class BadInput(Exception):
    """The user's input (recipe, override, file, data) is wrong; the message is one line naming it."""


class RunFailed(Exception):
    """Something broke while running a valid recipe."""


def blocking_file(path: Path) -> Path | None:
    """The first proper ancestor of ``path`` that exists but is not a directory (``a.toml`` in
    ``a.toml/b.toml``), if any."""
    for parent in reversed(path.parents):
        try:
            if parent.exists() and not parent.is_dir():
                return parent
        except OSError:
            return None
    return None


def path_problem(path: Path, error: BaseException) -> str:
    """Why ``path`` could not be used, in a few words, from the error that using it raised."""
    if isinstance(error, ValueError):  # e.g. an embedded NUL
        return "not a valid path"
    if isinstance(error, NotADirectoryError) or getattr(error, "errno", None) == errno.ENOTDIR:
        blocker = blocking_file(path)
        return f"{blocker} is a file, not a directory" if blocker else "a part of the path is not a directory"
    if isinstance(error, FileNotFoundError):
        return "no such file or directory"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, IsADirectoryError):
        return "is a directory"
    if getattr(error, "errno", None) == errno.ENAMETOOLONG:
        return "file name too long"
    if getattr(error, "errno", None) == errno.ELOOP:
        return "too many levels of symbolic links"
    strerror = getattr(error, "strerror", None)
    return (strerror or str(error) or type(error).__name__).lower()
