"""Arriving sources: a folder into which each period's new owner files keep landing.

Layout (the owner's formats and names throughout)::

    <source>/                    the dataset's STATIC files (MovieLens u.item, u.user,
                                 u.genre; Amazon meta_<Category>.json[.gz]; optional)
    <source>/arrivals/<label>/   one folder per period, holding that period's
                                 interaction file (MovieLens u.data; Amazon
                                 <Category>_5.json[.gz] / reviews_<Category>_5.json[.gz])

Labels sort chronologically (``1997-09-22``, ``2014-03``). Hidden entries of
``arrivals/`` are skipped (a folder being published appears under a hidden
name first and is renamed into place, see :mod:`.timeline_cut`).

An arrival is read by pointing the dataset's adapter at a private temporary
folder of symbolic links: the static files plus that arrival's files. The
adapter thus sees exactly the layout it knows, and each arrival is parsed
once (the pipeline caches it on the arrival's and the static files' content
fingerprints). Errors and ``source_files`` name the original files, never the
temporary links.

This module sits below the adapters in the package layers, so the adapter
entry point is passed in (``ingest=din_model.data.adapters.ingest``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from din_model.data.canonical.schema import CanonicalData
from din_model.errors import ConfigError, DataError
from din_model.io.fingerprint import fingerprint_files

ARRIVALS_DIR = "arrivals"
_LAYOUT = (
    f"a folder per arrival under {ARRIVALS_DIR}/ (named by a sortable label such as "
    "1997-09-22 or 2014-03) holding that period's interaction file in the owner's format"
)
_WINDOW = re.compile(r"^\s*(\d+)\s*([wdh])\s*$")
_UNIT_SECONDS = {"w": 7 * 86_400, "d": 86_400, "h": 3_600}

Ingest = Callable[..., CanonicalData]


@dataclass(frozen=True)
class Arrival:
    """One period's files: ``label`` is the folder's name, ``fingerprint`` their content."""

    label: str
    folder: Path
    files: tuple[Path, ...]
    fingerprint: str

    def describe(self) -> dict[str, Any]:
        """What a run records about an arrival it used (JSON-ready)."""
        return {
            "label": self.label,
            "files": [str(path) for path in self.files],
            "fingerprint": self.fingerprint,
        }


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def is_arriving_source(source: Path) -> bool:
    """True when ``source`` has an ``arrivals/`` folder (new files land there)."""
    return (Path(source) / ARRIVALS_DIR).is_dir()


def _arrival(folder: Path) -> Arrival:
    entries = sorted(path for path in folder.iterdir() if _visible(path))
    nested = [path for path in entries if not path.is_file()]
    if nested:
        raise DataError(
            nested[0], "only the period's interaction files in an arrival folder", got="a folder"
        )
    if not entries:
        raise DataError(folder, "an arrival folder holding that period's files", got="no files")
    return Arrival(
        label=folder.name,
        folder=folder,
        files=tuple(entries),
        fingerprint=fingerprint_files(entries, root=folder),
    )


def list_arrivals(source: Path) -> list[Arrival]:
    """Every arrival of ``source``, oldest (lowest label) first.

    A plain file directly in ``arrivals/`` or an empty arrival folder is a
    DataError naming it and the expected layout: a file dropped in the wrong
    place must not be silently ignored.
    """
    root = Path(source) / ARRIVALS_DIR
    if not root.is_dir():
        raise DataError(root, _LAYOUT, got="no such folder")
    arrivals = []
    for entry in sorted(root.iterdir(), key=lambda path: path.name):
        if not _visible(entry):
            continue
        if not entry.is_dir():
            raise DataError(entry, _LAYOUT, got="a plain file")
        arrivals.append(_arrival(entry))
    return arrivals


def static_files(source: Path) -> list[Path]:
    """The regular, non-hidden files of the source root (its static owner files)."""
    return sorted(path for path in Path(source).iterdir() if _visible(path) and path.is_file())


def static_fingerprint(source: Path) -> str:
    """Content fingerprint of the static files (names relative to the source)."""
    return fingerprint_files(static_files(source), root=source)


def arrivals_fingerprint(arrivals: Sequence[Arrival]) -> str:
    """One value for a set of arrivals: their labels and content, in order."""
    payload = json.dumps([[a.label, a.fingerprint] for a in arrivals], separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def parse_window(text: str | None) -> int | None:
    """``"8w"`` / ``"30d"`` / ``"12h"`` -> seconds; None or ``""`` -> None (no window)."""
    if text is None or not str(text).strip():
        return None
    match = _WINDOW.match(str(text))
    if match is None or int(match[1]) < 1:
        raise ConfigError(
            "window: expected a positive number of weeks, days or hours such as 8w, 30d "
            f"or 12h, got {text!r}"
        )
    return int(match[1]) * _UNIT_SECONDS[match[2]]


@contextmanager
def staged_arrival(source: Path, arrival: Arrival) -> Iterator[tuple[Path, dict[Path, Path]]]:
    """A temporary folder of links: static files + the arrival's files, and link -> original.

    An arrival file named like a static file replaces it (the period's version wins).
    The folder is removed on exit.
    """
    staging = Path(tempfile.mkdtemp(prefix=f"din-arrival-{arrival.label}-"))
    try:
        originals: dict[Path, Path] = {}
        for path in (*static_files(source), *arrival.files):
            originals[staging / path.name] = path.resolve()
        for link, target in originals.items():
            link.symlink_to(target)
        originals[staging] = arrival.folder
        yield staging, originals
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _original(path: Path, originals: dict[Path, Path]) -> Path:
    return originals.get(Path(path), Path(path))


def _named_in_original(exc: DataError, originals: dict[Path, Path]) -> DataError:
    """The same error, naming the arrival's file instead of its temporary link."""
    got = exc.got
    if got is not None:
        for link, target in sorted(originals.items(), key=lambda pair: -len(str(pair[0]))):
            got = got.replace(str(link), str(target))
    return DataError(
        _original(exc.path, originals), exc.expected, line=exc.line, column=exc.column, got=got
    )


def read_arrival(
    dataset: str,
    source: Path,
    arrival: Arrival,
    *,
    on_bad_lines: str = "error",
    rejects_dir: Path | None = None,
    ingest: Ingest,
) -> CanonicalData:
    """Parse one arrival with the dataset's adapter (``din_model.data.adapters.ingest``).

    The adapter runs on a temporary folder of links (static files + the arrival's
    files); ``source_files`` and any DataError name the original files.
    """
    with staged_arrival(Path(source), arrival) as (staging, originals):
        try:
            data = ingest(dataset, staging, on_bad_lines=on_bad_lines, rejects_dir=rejects_dir)
        except DataError as exc:
            raise _named_in_original(exc, originals) from exc
    files = [_original(path, originals) for path in data.source_files]
    report = dict(data.report, arrival=arrival.label)
    return replace(data, source_files=files, report=report)
