"""Several canonical parts (one per arrival) as one data set, and the training window.

An arriving source is parsed one arrival at a time; training and the
held-back slice need them as one set of canonical tables. The parts are
concatenated in order (oldest arrival first), with ``line`` shifted so that it
stays unique and increasing across parts: ``line`` is the tie-breaker of equal
timestamps, so an event of an earlier arrival sorts before an event of a
later one at the same second, the same way on every run.

The adapters' duplicate rules hold across parts as they hold within one file:
an event repeated in a later arrival (every column but ``line`` equal) is
dropped, and where the adapter kept one event per (user, item) (Amazon: its
report counts ``duplicates_removed``) only the earliest is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from din_model.data.canonical.schema import UNKNOWN_CATEGORY, CanonicalData
from din_model.errors import ConfigError, DataError

# report entries that are per-part counts: summed over the parts
_SUMMED = ("rejected_lines", "reviews_read", "ingest_seconds", "duplicates_removed")
_ONE_EVENT_PER = ("user_id", "item_id")


def _shifted_lines(parts: Sequence[CanonicalData], table: str) -> list[pl.DataFrame]:
    frames, offset = [], 0
    for part in parts:
        frame = getattr(part, table)
        if "line" in frame.columns and frame.height:
            frame = frame.with_columns((pl.col("line") + offset).alias("line"))
            offset = int(frame["line"].max()) + 1
        frames.append(frame)
    return frames


def _first_per(frames: list[pl.DataFrame], key: str) -> pl.DataFrame:
    return pl.concat(frames, how="diagonal_relaxed").unique(key, keep="first", maintain_order=True)


def _drop_repeats(interactions: pl.DataFrame, one_event_per: bool) -> tuple[pl.DataFrame, int, int]:
    """Events repeated in a later part: exact copies, then (user, item) repeats under the rule."""
    columns = [name for name in interactions.columns if name != "line"]
    kept = interactions.filter(pl.struct(columns).is_first_distinct())
    exact = interactions.height - kept.height
    if not one_event_per:
        return kept, exact, 0
    pair = pl.struct(*_ONE_EVENT_PER)
    later = kept.sort("timestamp", "line").filter(~pair.is_first_distinct()).select("line")
    earliest = kept.filter(~pl.col("line").is_in(later["line"].implode()))
    return earliest, exact, kept.height - earliest.height


def _merged_report(parts: Sequence[CanonicalData], data: CanonicalData) -> dict[str, Any]:
    report: dict[str, Any] = dict(parts[0].report)
    for name in _SUMMED:
        values = [part.report[name] for part in parts if name in part.report]
        if values:
            report[name] = round(sum(values), 3) if name == "ingest_seconds" else sum(values)
    dropped: dict[str, int] = {}
    for part in parts:
        for table, count in (part.report.get("duplicates_dropped") or {}).items():
            dropped[table] = dropped.get(table, 0) + int(count)
    report["duplicates_dropped"] = dropped
    by_file: dict[str, int] = {}
    for part in parts:
        for name, count in (part.report.get("rejected_lines_by_file") or {}).items():
            by_file[name] = by_file.get(name, 0) + int(count)
    if by_file:
        report["rejected_lines_by_file"] = by_file
    report["rejects_files"] = [f for part in parts for f in part.report.get("rejects_files", [])]
    report.pop("arrival", None)  # the parts' labels are listed instead
    report["items_unknown_category"] = int((data.items["category"] == UNKNOWN_CATEGORY).sum())
    report.update(
        interactions=data.interactions.height, users=data.users.height, items=data.items.height
    )
    report["parts"] = [part.report.get("arrival", str(i)) for i, part in enumerate(parts)]
    return report


def merge_canonical(parts: Sequence[CanonicalData]) -> CanonicalData:
    """One data set from ``parts`` in order (see the module docstring for the rules).

    Items and users keep the first row per id (the oldest part's), source files
    are concatenated (each file once), and the data is synthetic when any part is.
    """
    if not parts:
        raise ConfigError("merge_canonical needs at least one part, got none")
    first = parts[0]
    for part in parts[1:]:
        if (part.dataset, part.layout) != (first.dataset, first.layout):
            origin = part.source_files[0] if part.source_files else part.dataset
            raise DataError(
                origin,
                f"data of the same dataset and layout as the others ({first.dataset}, "
                f"{first.layout})",
                got=f"{part.dataset}, {part.layout}",
            )
    with_behaviors = [part.behaviors is not None for part in parts]
    if any(with_behaviors) and not all(with_behaviors):
        raise DataError(
            first.source_files[0] if first.source_files else first.dataset,
            "a behaviour log in every part or in none",
            got=f"{sum(with_behaviors)} of {len(parts)} parts with one",
        )
    one_event_per = any("duplicates_removed" in part.report for part in parts)
    interactions = pl.concat(_shifted_lines(parts, "interactions"), how="diagonal_relaxed")
    interactions, exact, repeated = _drop_repeats(interactions, one_event_per)
    behaviors = None
    if all(with_behaviors):
        behaviors = pl.concat(_shifted_lines(parts, "behaviors"), how="diagonal_relaxed")
    items = _first_per([part.items for part in parts], "item_id")
    users = _first_per([part.users for part in parts], "user_id")
    merged = CanonicalData(
        dataset=first.dataset,
        layout=first.layout,
        interactions=interactions,
        items=items.filter(pl.col("item_id").is_in(interactions["item_id"].implode())),
        users=users.filter(pl.col("user_id").is_in(interactions["user_id"].implode())),
        behaviors=behaviors,
        # each arrival lists the static files again: every file once, in first-seen order
        source_files=list(dict.fromkeys(path for part in parts for path in part.source_files)),
        synthetic=any(part.synthetic for part in parts),
    )
    merged.report = _merged_report(parts, merged)
    merged.report["duplicates_dropped"]["interactions"] = (
        merged.report["duplicates_dropped"].get("interactions", 0) + exact
    )
    if one_event_per:
        merged.report["duplicates_removed"] = merged.report.get("duplicates_removed", 0) + repeated
    return merged


def keep_window(data: CanonicalData, seconds: int | None) -> CanonicalData:
    """Interactions no older than ``seconds`` before the newest one; None keeps everything.

    Items, users and the behaviour log are cut to what the kept interactions need.
    """
    if seconds is None or data.interactions.is_empty():
        return data
    cutoff = int(data.interactions["timestamp"].max()) - int(seconds)
    interactions = data.interactions.filter(pl.col("timestamp") >= cutoff)
    behaviors = data.behaviors
    if behaviors is not None:
        behaviors = behaviors.filter(pl.col("timestamp") >= cutoff)
    kept = CanonicalData(
        dataset=data.dataset,
        layout=data.layout,
        interactions=interactions,
        items=data.items.filter(pl.col("item_id").is_in(interactions["item_id"].implode())),
        users=data.users.filter(pl.col("user_id").is_in(interactions["user_id"].implode())),
        behaviors=behaviors,
        source_files=list(data.source_files),
        synthetic=data.synthetic,
    )
    kept.report = dict(
        data.report,
        window_seconds=int(seconds),
        window_start=cutoff,
        window_dropped=data.interactions.height - interactions.height,
        interactions=interactions.height,
        users=kept.users.height,
        items=kept.items.height,
        items_unknown_category=int((kept.items["category"] == UNKNOWN_CATEGORY).sum()),
    )
    return kept
