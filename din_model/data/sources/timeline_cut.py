"""Cut a real data set's timeline into arrivals, to replay what a schedule would have seen.

:func:`cut_timeline` writes an arriving source (:mod:`.arrivals`) from a plain
owner source: the static files are copied, and each period's interaction
LINES are copied verbatim, in their original order, into
``arrivals/<label>/<owner file name>`` (gzip-compressed again when the owner's
file is, with a fixed header time so that the same cut gives the same bytes).
Supported: MovieLens (``u.data``, ``ratings.dat``, ``ratings.csv`` whose header
line heads every arrival) and Amazon 2014/2018 review JSON lines (parsed with
:mod:`json`, timestamps from ``unixReviewTime``).

Periods (``every``): ``<n>d`` days, ``<n>w`` weeks, ``<n>m`` calendar months, in
UTC. They start at ``start`` (an ISO date; the first of a month for months),
or, without it, at the first event's day, the Monday of its week, or the first
of its month. Labels are each period's first day, ``YYYY-MM-DD`` (months:
``YYYY-MM``), so they sort chronologically. Events before ``start`` form one
initial arrival labelled by the first event's day (months: its month), which
sorts before every period. Periods without events get no folder. ``limit``
keeps the initial arrival and the first ``limit`` periods after it (the first
``limit`` periods when there is no ``start``); later events are left out.

A replay reveals the cut one arrival at a time: cut into a staging folder,
then :func:`publish_next_arrival` copies the next unpublished arrival into
the landing folder the schedule reads (the static files come with the
first), under a hidden name renamed into place, so a run never sees half an
arrival.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from din_model.data.sources.arrivals import ARRIVALS_DIR, Arrival, list_arrivals, static_files
from din_model.errors import ConfigError, DataError, OutputRefused
from din_model.io.atomic import write_json_atomic
from din_model.io.output_dir import MARKER, read_marker, replace_output_dir, write_marker
from din_model.registry import adapter_module

CUT_COMMAND = "cut-timeline"
PUBLISH_COMMAND = "publish-arrivals"
TIMELINE_FILE = ".din-timeline.json"  # hidden: never a static file nor in a fingerprint
_EVERY = re.compile(r"^\s*(\d+)\s*([dwm])\s*$")
_SYNTHETIC_MARKER = "SYNTHETIC.json"
# MovieLens ratings files: name -> (field separator, header line?)
_MOVIELENS = {
    "ml-100k": ("u.data", b"\t", False),
    "ml-1m": ("ratings.dat", b"::", False),
    "ml-20m": ("ratings.csv", b",", True),
}
_MOVIELENS_STATIC = ("u.item", "u.user", "u.genre", "movies.dat", "users.dat", "movies.csv")


@dataclass(frozen=True)
class EventFile:
    """The interaction file to cut and how to read a line's timestamp."""

    path: Path
    header: bool
    timestamp: Callable[[bytes], int]  # raises ValueError with what was found
    expected: str
    static: tuple[Path, ...]


@dataclass(frozen=True)
class Periods:
    """``every`` parsed: a count of days, weeks or months."""

    count: int
    unit: str  # "d" | "w" | "m"

    def anchor(self, first: date, start: date | None) -> date:
        if start is not None:
            return start
        if self.unit == "w":
            return first - timedelta(days=first.weekday())
        if self.unit == "m":
            return first.replace(day=1)
        return first

    def label(self, day: date, anchor: date) -> str:
        if self.unit == "m":
            months = (day.year - anchor.year) * 12 + day.month - anchor.month
            index = anchor.year * 12 + anchor.month - 1 + months // self.count * self.count
            return f"{index // 12:04d}-{index % 12 + 1:02d}"
        length = self.count * (7 if self.unit == "w" else 1)
        return (anchor + timedelta(days=(day - anchor).days // length * length)).isoformat()

    def initial_label(self, first: date) -> str:
        return f"{first.year:04d}-{first.month:02d}" if self.unit == "m" else first.isoformat()


def parse_every(text: str) -> Periods:
    match = _EVERY.match(str(text))
    if match is None or int(match[1]) < 1:
        raise ConfigError(
            "every: expected a period such as 1d, 1w or 1m (days, weeks, calendar months), "
            f"got {text!r}"
        )
    return Periods(int(match[1]), match[2])


def parse_start(text: str | None, periods: Periods) -> date | None:
    if text is None or not str(text).strip():
        return None
    try:
        start = date.fromisoformat(str(text).strip())
    except ValueError:
        raise ConfigError(f"start: expected an ISO date such as 1998-01-01, got {text!r}") from None
    if periods.unit == "m" and start.day != 1:
        raise ConfigError(
            f"start: expected the first day of a month for monthly periods, got {text!r}"
        )
    return start


def _field_timestamp(separator: bytes) -> Callable[[bytes], int]:
    def read(line: bytes) -> int:
        fields = line.rstrip(b"\r\n").split(separator)
        if len(fields) < 4:
            raise ValueError(f"{len(fields)} fields")
        return int(fields[3])

    return read


def _json_timestamp(line: bytes) -> int:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(record, dict) or "unixReviewTime" not in record:
        raise ValueError("no unixReviewTime")
    value = record["unixReviewTime"]
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(repr(value))
    return int(value)


def event_file(dataset: str, source: Path) -> EventFile:
    """The owner's interaction file of ``source`` and the static files that go with it."""
    if not source.is_dir():
        raise DataError(source, f"a folder holding the {dataset} files", got="no such folder")
    adapter = adapter_module(dataset)
    marker = [source / _SYNTHETIC_MARKER] if (source / _SYNTHETIC_MARKER).is_file() else []
    if dataset == "movielens":
        layout = adapter.detect(source)
        if layout not in _MOVIELENS:
            raise DataError(
                source, "a MovieLens folder with u.data, ratings.dat or ratings.csv", got="none"
            )
        name, separator, header = _MOVIELENS[layout]
        static = [source / n for n in _MOVIELENS_STATIC if (source / n).is_file()]
        return EventFile(
            source / name,
            header,
            _field_timestamp(separator),
            "a ratings line whose fourth field is an integer unix timestamp",
            tuple(static + marker),
        )
    if dataset == "amazon":
        reviews = adapter.find_reviews_file(source)
        if reviews is None:
            raise DataError(
                source,
                "an Amazon reviews file (reviews_<Category>_5.json[.gz] or <Category>_5.json[.gz])",
                got="none",
            )
        meta = adapter.find_metadata_file(reviews)
        return EventFile(
            reviews,
            False,
            _json_timestamp,
            "a JSON object with an integer unixReviewTime",
            tuple(([meta] if meta is not None else []) + marker),
        )
    raise ConfigError(f"dataset: expected movielens or amazon for a timeline cut, got {dataset!r}")


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except (OSError, EOFError) as exc:
        raise DataError(path, "a readable (complete) file", got=str(exc)) from exc


def _day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


def _read_events(events: EventFile) -> tuple[bytes | None, list[tuple[date, bytes]]]:
    header, rows = None, []
    for number, line in enumerate(_lines(events.path), start=1):
        if events.header and header is None:
            header = line
            continue
        if not line.strip():
            continue
        try:
            seconds = events.timestamp(line)
            day = _day(seconds)
        except (ValueError, OverflowError, OSError) as exc:
            shown = line.decode("utf-8", "replace").strip()
            raise DataError(
                events.path, events.expected, line=number, got=f"{exc}: {shown}"
            ) from None
        rows.append((day, line if line.endswith(b"\n") else line + b"\n"))
    if not rows:
        raise DataError(events.path, "at least one event line", got="none")
    return header, rows


def _grouped(
    rows: list[tuple[date, bytes]], periods: Periods, start: date | None, limit: int | None
) -> dict[str, list[bytes]]:
    first = min(day for day, _ in rows)
    anchor = periods.anchor(first, start)
    initial = periods.initial_label(first)
    groups: dict[str, list[bytes]] = {}
    for day, line in rows:
        label = initial if start is not None and day < start else periods.label(day, anchor)
        groups.setdefault(label, []).append(line)
    labels = sorted(groups)
    has_initial = start is not None and first < start
    if limit is not None:
        labels = labels[: limit + (1 if has_initial else 0)]
    return {label: groups[label] for label in labels}


def _write_lines(path: Path, header: bytes | None, lines: list[bytes]) -> None:
    if path.name.endswith(".gz"):
        with (
            path.open("wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            if header is not None:
                out.write(header)
            out.writelines(lines)
        return
    with path.open("wb") as out:
        if header is not None:
            out.write(header)
        out.writelines(lines)


def _refuse_foreign(target: Path) -> None:
    """Only a cut of ours is replaced (an output of another din command never)."""
    marker = read_marker(target) if target.is_dir() else None
    if marker is not None and marker.get("command") != CUT_COMMAND:
        raise OutputRefused(
            f"output folder {target} holds a `din {marker.get('command')}` output, not a "
            "timeline cut; refusing to replace it: choose a new or empty folder"
        )


def cut_timeline(
    dataset: str,
    source: Path,
    target: Path,
    *,
    every: str,
    start: str | None = None,
    limit: int | None = None,
) -> list[Path]:
    """Write the arriving source at ``target``; returns its arrival folders, oldest first.

    ``target`` must be new, empty or an earlier cut (its ``.din-output`` marker);
    everything is written to a temporary sibling and renamed into place.
    """
    source, target = Path(source), Path(target)
    periods = parse_every(every)
    start_day = parse_start(start, periods)
    if limit is not None and (isinstance(limit, bool) or int(limit) < 1):
        raise ConfigError(f"limit: expected a positive number of arrivals, got {limit!r}")
    _refuse_foreign(target)
    events = event_file(dataset, source)
    header, rows = _read_events(events)
    groups = _grouped(rows, periods, start_day, limit)
    with replace_output_dir(target, command=CUT_COMMAND, force=True, sources=[source]) as tmp:
        for path in events.static:
            shutil.copyfile(path, tmp / path.name)
        for label, lines in groups.items():
            folder = tmp / ARRIVALS_DIR / label
            folder.mkdir(parents=True)
            _write_lines(folder / events.path.name, header, lines)
        write_json_atomic(
            tmp / TIMELINE_FILE,
            {
                "dataset": dataset,
                "source": str(source.resolve()),
                "file": events.path.name,
                "every": every,
                "start": start_day.isoformat() if start_day else None,
                "limit": limit,
                "arrivals": {label: len(lines) for label, lines in groups.items()},
                "events_left_out": len(rows) - sum(len(lines) for lines in groups.values()),
            },
        )
    return [target / ARRIVALS_DIR / label for label in groups]


def pending_arrivals(staging: Path, landing: Path) -> list[Arrival]:
    """The arrivals of ``staging`` not yet published into ``landing``, oldest first."""
    published = set()
    if (Path(landing) / ARRIVALS_DIR).is_dir():
        published = {arrival.label for arrival in list_arrivals(landing)}
    return [a for a in list_arrivals(staging) if a.label not in published]


def _prepare_landing(staging: Path, landing: Path) -> None:
    if landing.exists() and not landing.is_dir():
        raise OutputRefused(f"landing folder {landing} is a file, not a folder")
    if landing.is_dir() and any(landing.iterdir()):
        marker = read_marker(landing)
        if marker is None or marker.get("command") != PUBLISH_COMMAND:
            raise OutputRefused(
                f"landing folder {landing} is not empty and was not filled by a replay "
                f"(no {MARKER} of `{PUBLISH_COMMAND}`); choose a new or empty folder"
            )
        return
    landing.mkdir(parents=True, exist_ok=True)
    for path in static_files(staging):
        shutil.copyfile(path, landing / path.name)
    (landing / ARRIVALS_DIR).mkdir(exist_ok=True)
    write_marker(landing, PUBLISH_COMMAND)


def publish_next_arrival(staging: Path, landing: Path) -> Arrival | None:
    """Copy the oldest unpublished arrival of ``staging`` into ``landing``; None when none is left.

    ``landing`` is created on the first call (static files copied, marked as ours);
    the arrival is copied under a hidden name and renamed into place.
    """
    staging, landing = Path(staging), Path(landing)
    _prepare_landing(staging, landing)
    pending = pending_arrivals(staging, landing)
    if not pending:
        return None
    arrival = pending[0]
    final = landing / ARRIVALS_DIR / arrival.label
    partial = final.parent / f".{arrival.label}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        shutil.copytree(arrival.folder, partial)
        os.replace(partial, final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return next(a for a in list_arrivals(landing) if a.label == arrival.label)


__all__ = [
    "CUT_COMMAND",
    "PUBLISH_COMMAND",
    "TIMELINE_FILE",
    "cut_timeline",
    "parse_every",
    "pending_arrivals",
    "publish_next_arrival",
]
