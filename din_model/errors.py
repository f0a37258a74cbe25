"""Error types that carry enough context for a user to fix their input.

Every failure a user can cause (a bad file, a wrong option, an inconsistent
prepared directory) raises a subclass of :class:`DinError`; the CLI prints its
message and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path


class DinError(Exception):
    """Base class for errors that are the user's to fix; the CLI prints them without a traceback."""


class DataError(DinError):
    """A problem in an input file, located as precisely as the format allows.

    The message always names the file, and the line (1-based) or column when
    known, plus what was expected and what was found.
    """

    def __init__(
        self,
        path: str | Path,
        expected: str,
        *,
        line: int | None = None,
        column: str | None = None,
        got: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        self.expected = expected
        self.got = got
        where = str(self.path)
        if line is not None:
            where += f":{line}"
        parts = [where]
        if column is not None:
            parts.append(f"column '{column}'")
        message = ": ".join(parts) + f": expected {expected}"
        if got is not None:
            shown = got if len(got) <= 120 else got[:117] + "..."
            message += f", got {shown}"
        super().__init__(message)


class ConfigError(DinError):
    """An unknown option value, a bad config key or an inconsistent configuration."""


class ValidationFailed(DinError):
    """A Great Expectations suite failed; the message is the readable summary."""

    def __init__(self, summary: str, result: dict | None = None) -> None:
        self.summary = summary
        self.result = result or {}
        super().__init__(summary)


class OutputRefused(ConfigError):
    """An output path that must not be written: a file, the source, or a folder that is not ours.

    Raised before anything is written; the message is one line naming the
    path and why, and, for an earlier output of this project, says to pass
    ``--force``.
    """


class WriteFailed(DinError):
    """Writing an output failed for a reason the user can fix (full disk, permissions, a file
    where a folder belongs); one line naming the path and what went wrong."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot write {self.path}: {reason}")
