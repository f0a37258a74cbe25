"""Taobao data sets: layout detection, and the UserBehavior log to canonical tables.

UserBehavior (``user,item,category,behavior,timestamp``, no header) is a log of
item events; each line is kept as an interaction (``behavior`` = pv, cart, fav
or buy): repeated page views are real behaviour, only exact copies of a line
(same user, item, behaviour and second) are dropped, as for every dataset. An
item's category is taken from its rows; the few items logged under several
categories get the most frequent one, ties to the smallest id, so that the
result does not depend on row order. The display-ad click set lives in
:mod:`.taobao_display_ad`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import CanonicalData
from din_model.data.readers import (
    integer_ids_as_text,
    parse_integers,
    read_delimited,
    require_allowed,
    require_plausible_timestamps,
    require_values,
)
from din_model.data.readers.bad_lines import BadLinePolicy, BadLines

from . import taobao_display_ad
from ._sources import ambiguous_files, require_directory, require_not_dangling, visible_files
from ._tables import (
    assemble_canonical,
    canonical_interactions,
    require_rows,
)

logger = logging.getLogger(__name__)

USER_BEHAVIOR = "taobao-user-behavior"
DISPLAY_AD = taobao_display_ad.DISPLAY_AD
LAYOUT_FILES = {
    USER_BEHAVIOR: "UserBehavior.csv (user,item,category,behavior,timestamp; no header; "
    "UserBehavior*.csv also accepted)",
    DISPLAY_AD: taobao_display_ad.EXPECTED_FILES,
}
BEHAVIORS = frozenset({"pv", "cart", "fav", "buy"})
_USER_BEHAVIOR_FILE = re.compile(r"^UserBehavior.*\.csv$")
_NAMES = ["user_id", "item_id", "category", "behavior", "timestamp"]


def _user_behavior_files(source: Path) -> list[str]:
    return [name for name in visible_files(source) if _USER_BEHAVIOR_FILE.match(name)]


def detect(source: Path) -> str | None:
    require_directory(source, "Taobao")
    candidates = _user_behavior_files(source)
    if taobao_display_ad.detect(source):
        candidates.append(taobao_display_ad.RAW_SAMPLE)
    if len(candidates) > 1:
        raise ambiguous_files(
            source, "Taobao data set", candidates, "keep one data set per directory"
        )
    if not candidates:
        return None
    return DISPLAY_AD if candidates[0] == taobao_display_ad.RAW_SAMPLE else USER_BEHAVIOR


def read(source: Path, layout: str, policy: BadLinePolicy) -> CanonicalData:
    if layout == DISPLAY_AD:
        return taobao_display_ad.read(source, policy)
    path = source / _user_behavior_files(source)[0]
    require_not_dangling(path, "a readable events file")
    frame = read_events(path, policy.for_file(path))
    metadata, conflicts = item_categories_from_events(frame)
    report: dict[str, object] = {
        "events_file": path.name,
        "items_with_conflicting_categories": conflicts,
    }
    if conflicts:
        logger.warning("%d items appear under several categories: most frequent kept", conflicts)
    data = assemble_canonical(
        "taobao",
        USER_BEHAVIOR,
        canonical_interactions(frame),
        metadata=metadata,
        profiles=None,
        source_files=[path],
        report=report,
    )
    behaviors = data.interactions.group_by("behavior").len().iter_rows()
    report["behavior_counts"] = dict(sorted(behaviors))  # of the events kept
    return data


def read_events(path: Path, bad: BadLines) -> pl.DataFrame:
    """The valid lines of a UserBehavior file: ``line``, ids as text, behaviour, timestamp."""
    frame = read_delimited(path, separator=",", names=_NAMES, bad=bad)
    frame = require_values(frame, _NAMES, bad)
    frame = integer_ids_as_text(frame, ["user_id", "item_id", "category"], bad)
    frame = require_allowed(frame, "behavior", BEHAVIORS, bad)
    frame = parse_integers(frame, "timestamp", bad, expected="an integer unix timestamp")
    frame = require_plausible_timestamps(frame, "timestamp", bad)
    require_rows(frame, path, "event")
    return frame


def item_categories_from_events(events: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Each item's most frequent category (ties: smallest id) and how many items had several.

    Exact copies of an event count once, as they are dropped from the interactions.
    """
    distinct = events.unique(["user_id", "item_id", "category", "behavior", "timestamp"])
    counts = distinct.group_by("item_id", "category").len()
    chosen = counts.sort(
        ["item_id", "len", pl.col("category").cast(pl.Int64)],
        descending=[False, True, False],
    ).unique("item_id", keep="first", maintain_order=True)
    conflicted_items = counts.group_by("item_id").len().filter(pl.col("len") > 1).height
    return chosen.select("item_id", "category"), conflicted_items
