"""Where an adapter's files are: source checks, the synthetic marker, unrecognised layouts.

A dangling symbolic link is never "no file": ``Path.is_file()`` is False for
it, so an optional metadata or profile file behind a broken link would be
read as absent and the data prepared without it, with only a warning.
:func:`require_not_dangling` makes it an error naming the link and its target,
and detection sees broken links (:func:`file_or_broken_link`) so that a broken
link to the main file is reported as such, not as an unknown layout.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from din_model.errors import DataError

logger = logging.getLogger(__name__)

SYNTHETIC_MARKER = "SYNTHETIC.json"
_LISTED_FILES = 20


OPTIONAL_FILE = "a readable file, or no file at all"


def require_not_dangling(path: Path, expected: str = OPTIONAL_FILE) -> None:
    """Raise when ``path`` is a symbolic link whose target does not exist."""
    if path.is_symlink() and not path.exists():
        target = path.parent / path.readlink()
        raise DataError(path, expected, got=f"a broken symbolic link to {target} (no such file)")


def file_or_broken_link(path: Path) -> bool:
    """True for a regular file and for a dangling link (to be reported, never ignored)."""
    return path.is_file() or (path.is_symlink() and not path.exists())


def source_directory(source: Path) -> Path:
    """The directory that holds the data (a file source's parent)."""
    return source if source.is_dir() else source.parent


def require_directory(source: Path, dataset: str) -> None:
    if not source.is_dir():
        raise DataError(source, f"a directory holding the {dataset} files", got="a file")


def visible_files(directory: Path) -> list[str]:
    """Names of the regular, non-hidden files (and broken links) of ``directory``, sorted."""
    return sorted(
        path.name
        for path in directory.iterdir()
        if file_or_broken_link(path) and not path.name.startswith(".")
    )


def read_synthetic_marker(source: Path) -> tuple[Path, dict[str, Any]] | None:
    """The parsed ``SYNTHETIC.json`` next to the data, if the generator wrote one."""
    marker = source_directory(source) / SYNTHETIC_MARKER
    require_not_dangling(marker)  # synthetic data must never pass for real data
    if not marker.is_file():
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(
            marker, "a JSON document describing the synthetic data", got=str(exc)
        ) from exc
    if not isinstance(content, dict):
        raise DataError(marker, "a JSON object", got=type(content).__name__)
    return marker, content


def unrecognised_layout(dataset: str, directory: Path, layouts: Mapping[str, str]) -> DataError:
    """The error for a directory without any known file set: what each layout expects."""
    try:
        found = visible_files(directory) if directory.is_dir() else [directory.name]
    except OSError:
        found = []
    shown = ", ".join(found[:_LISTED_FILES]) or "no files"
    if len(found) > _LISTED_FILES:
        shown += f", ... ({len(found)} files)"
    expected = f"the files of a known {dataset} layout: " + "; ".join(
        f"{name}: {files}" for name, files in layouts.items()
    )
    return DataError(directory, expected, got=f"{shown}")


def ambiguous_files(directory: Path, what: str, candidates: list[str], advice: str) -> DataError:
    """The error for a directory holding several files that could each be the input."""
    names = ", ".join(sorted(candidates))
    return DataError(directory, f"exactly one {what}, found {len(candidates)}: {names}; {advice}")


def optional_file(path: Path, consequence: str, report: dict[str, object], flag: str) -> bool:
    """Whether an optional file is there; records ``report[flag]`` and warns when it is not.

    A dangling link is an error, not an absent file.
    """
    require_not_dangling(path)
    present = path.is_file()
    report[flag] = not present
    if not present:
        logger.warning("%s is missing: %s", path, consequence)
    return present
