"""The canonical schema every dataset adapter produces.

Each adapter turns its owner's raw files into the same tables, so every later
stage (protocols, encoding, validation, training) is dataset-agnostic:

``interactions`` (one row per event, in the source's original order)
    ``user_id`` (String), ``item_id`` (String), ``timestamp`` (Int64, unix
    seconds), ``rating`` (Float64, null where the data has none), ``behavior``
    (String, null where the data has none: "review", "pv", "buy", ...),
    ``label`` (Int8, null unless the source carries an explicit click label),
    ``line`` (Int64, 0-based position in the source, the stable tie-breaker
    for equal timestamps). Adapters may add context columns (e.g. ``pid``).
``items`` (one row per item that occurs in ``interactions``)
    ``item_id`` (String, unique), ``category`` (String, never null; the
    reserved value :data:`UNKNOWN_CATEGORY` where metadata is missing or
    empty), plus optional item fields (``brand``, ``price``, ...).
``users`` (one row per user with a profile; may have no profile columns)
    ``user_id`` (String, unique), plus profile fields (String).
``behaviors`` (optional, only for sources whose behaviour log is not made of
    item events, i.e. the Taobao display-ad ``behavior_log.csv``)
    ``user_id``, ``timestamp``, ``behavior``, ``category``, ``brand``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

UNKNOWN_CATEGORY = "unknown"

# The plausible window of an event's ``timestamp`` (unix seconds, UTC, both ends included),
# checked where each line is read (:func:`din_model.data.readers.require_plausible_timestamps`).
# Lower end: no supported source has older events (MovieLens ratings start on 1995-01-09,
# Amazon reviews in 1996, Taobao logs in 2017), so 0, negative numbers and counts in a
# wrong unit (days, hours) are rejected. Upper end: a fixed date rather than "now", so that
# the same file is accepted or rejected identically on every day (prepared data, rejects
# and fingerprints stay reproducible); it is far beyond any real event yet rejects
# milliseconds (any date after 1970-02-17 in milliseconds exceeds it) and year-3000 typos.
# It matches the upper bound of the Great Expectations suites, the second gate.
EARLIEST_TIMESTAMP = 788_918_400  # 1995-01-01T00:00:00Z
LATEST_TIMESTAMP = 4_102_444_799  # 2099-12-31T23:59:59Z
TIMESTAMP_WINDOW_TEXT = "from 1995-01-01 to 2099-12-31 (UTC)"

INTERACTION_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "item_id": pl.String(),
    "timestamp": pl.Int64(),
    "rating": pl.Float64(),
    "behavior": pl.String(),
    "label": pl.Int8(),
    "line": pl.Int64(),
}
ITEM_COLUMNS: dict[str, pl.DataType] = {"item_id": pl.String(), "category": pl.String()}
USER_COLUMNS: dict[str, pl.DataType] = {"user_id": pl.String()}
BEHAVIOR_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.String(),
    "timestamp": pl.Int64(),
    "behavior": pl.String(),
    "category": pl.String(),
    "brand": pl.String(),
}


@dataclass
class CanonicalData:
    """The output of an adapter: canonical tables plus what happened on the way.

    ``layout`` names the file layout that was recognised (``amazon-2014``,
    ``amazon-2018``, ``ml-100k``, ``ml-1m``, ``ml-20m``, ``taobao-user-behavior``,
    ``taobao-display-ad``); it selects the sampling protocol and feature spec.
    ``report`` holds counts a user wants to see (rows read, duplicates removed,
    items with the unknown category, rejected lines, ...). ``source_files`` are
    the raw files that were read, for the data fingerprint.
    """

    dataset: str
    layout: str
    interactions: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    behaviors: pl.DataFrame | None = None
    source_files: list[Path] = field(default_factory=list)
    synthetic: bool = False
    report: dict[str, Any] = field(default_factory=dict)


def missing_columns(frame: pl.DataFrame, required: dict[str, pl.DataType]) -> list[str]:
    """Names of required canonical columns that ``frame`` lacks or holds with another dtype."""
    problems = []
    for name, dtype in required.items():
        if name not in frame.columns:
            problems.append(f"{name} (missing)")
        elif frame.schema[name] != dtype:
            problems.append(f"{name} ({frame.schema[name]} instead of {dtype})")
    return problems
