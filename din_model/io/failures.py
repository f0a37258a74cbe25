"""Turn the I/O failures a user can cause into one-line messages that name the path.

Three libraries report the same failure three ways: Python raises ``OSError``
with an errno and a file name; polars raises ``ComputeError`` whose text ends
in ``(os error 28)``; torch's checkpoint writer raises ``RuntimeError``
("unexpected pos ...") with the failed write's ``OSError`` chained as its
context when it wrote through a Python file. :func:`io_errno` finds the errno
behind any of them, so one table of reasons serves every writer.

Only the errnos below are the user's to fix; any other failure is a bug and
keeps its traceback.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from din_model.errors import DinError, WriteFailed

REASONS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, where a file was expected",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
}
_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
_NO_SPACE_TEXT = "no space left on device"
_TEMPORARY = re.compile(r"(^|/)\.[^/]*\.(tmp|probe)-")  # names from atomic.py and output_dir.py


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what it was raised from or during, and so on (each once)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def io_errno(exc: BaseException) -> int | None:
    """The errno behind ``exc``: its own, one in its text, or one of the exceptions it chains."""
    for current in exception_chain(exc):
        if isinstance(current, OSError) and current.errno:
            return current.errno
        text = str(current)
        found = _OS_ERROR_CODE.search(text)
        if found:
            return int(found.group(1))
        if _NO_SPACE_TEXT in text.lower():
            return errno.ENOSPC
    return None


def failed_path(exc: BaseException, default: str | Path | None = None) -> str | None:
    """The path an OSError names (``filename``), else ``default``."""
    for current in exception_chain(exc):
        if isinstance(current, OSError) and current.filename:
            return str(current.filename)
    return None if default is None else str(default)


def user_error_message(exc: BaseException) -> str | None:
    """``PATH: reason`` for an I/O failure the user can fix, on one line; None for anything else."""
    code = io_errno(exc)
    if code not in REASONS:
        return None
    path = failed_path(exc)
    return f"{path}: {REASONS[code]}" if path else REASONS[code]


def write_failure(exc: BaseException, path: str | Path) -> WriteFailed | None:
    """``exc`` as a :class:`WriteFailed`, or None when it is not the user's to fix.

    It names the file ``exc`` names, unless that lies in a temporary sibling
    (:mod:`din_model.io.atomic`), a name the user never chose: then ``path``.
    """
    code = io_errno(exc)
    if code not in REASONS:
        return None
    named = failed_path(exc)
    if named is None or _TEMPORARY.search(named):
        named = str(path)
    return WriteFailed(named, REASONS[code])


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Re-raise a user-fixable I/O failure in the block as :class:`WriteFailed` about ``path``.

    Project errors and failures that are not the user's (bugs) pass unchanged.
    """
    try:
        yield
    except DinError:
        raise
    except Exception as exc:
        failure = write_failure(exc, path)
        if failure is None:
            raise
        raise failure from exc
