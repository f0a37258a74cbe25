"""Assembly of the canonical tables shared by every adapter.

Adapters differ in how they read their owner's files, not in what they
produce: the column order and dtypes of :mod:`din_model.data.canonical.schema`, items
and users listed in order of first appearance (deterministic), the reserved
``unknown`` category with its reasons counted, exact duplicate events dropped
and counted, and the same report keys.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import INTERACTION_COLUMNS, UNKNOWN_CATEGORY, CanonicalData
from din_model.errors import DataError

logger = logging.getLogger(__name__)

# Why an item ended up in the reserved category (keys of the report's reason counts).
NO_METADATA = "no_metadata"
EMPTY_CATEGORY = "empty_category"
LABELLED_UNKNOWN = "labelled_unknown"


def canonical_interactions(frame: pl.DataFrame, extra: Sequence[str] = ()) -> pl.DataFrame:
    """Columns of the schema in order and dtype (null where the source has none), then extras."""
    columns = [
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in INTERACTION_COLUMNS.items()
    ]
    return frame.select(*columns, *extra)


def require_rows(frame: pl.DataFrame, path: Path, what: str) -> None:
    """After skipping bad lines, an empty table is still an error (all lines were bad)."""
    if frame.is_empty():
        raise DataError(
            path, f"at least one valid {what}", got="none left after skipping bad lines"
        )


def items_with_categories(
    interactions: pl.DataFrame, metadata: pl.DataFrame | None
) -> tuple[pl.DataFrame, dict[str, object]]:
    """One row per interacted item with its category, ``unknown`` where none is known.

    ``metadata`` has ``item_id`` (unique), ``category`` (null or blank when the
    source has an empty category) and optional item fields. Returns the items
    table and the report entries counting unknown categories by reason.
    """
    item_ids = interactions.select(pl.col("item_id").unique(maintain_order=True))
    if metadata is None:
        metadata = pl.DataFrame(schema={"item_id": pl.String, "category": pl.String})
    joined = item_ids.join(
        metadata.with_columns(pl.lit(True).alias("_known")),
        on="item_id",
        how="left",
        maintain_order="left",
    )
    category = pl.col("category").str.strip_chars()
    reason = (
        pl.when(pl.col("_known").is_null())
        .then(pl.lit(NO_METADATA))
        .when(category.is_null() | (category == ""))
        .then(pl.lit(EMPTY_CATEGORY))
        .when(category == UNKNOWN_CATEGORY)
        .then(pl.lit(LABELLED_UNKNOWN))
    )
    joined = joined.with_columns(reason.alias("_reason"))
    counts = dict(joined.group_by("_reason").len().drop_nulls("_reason").iter_rows())
    items = joined.with_columns(
        pl.when(pl.col("_reason").is_null())
        .then(category)
        .otherwise(pl.lit(UNKNOWN_CATEGORY))
        .alias("category")
    ).drop("_known", "_reason")
    extra = [name for name in items.columns if name not in ("item_id", "category")]
    report = {
        "items_unknown_category": int(sum(counts.values())),
        "items_unknown_category_reasons": {
            reason: int(counts.get(reason, 0))
            for reason in (NO_METADATA, EMPTY_CATEGORY, LABELLED_UNKNOWN)
        },
    }
    return items.select("item_id", "category", *extra), report


def users_with_profiles(
    interactions: pl.DataFrame, profiles: pl.DataFrame | None
) -> tuple[pl.DataFrame, dict[str, object]]:
    """One row per interacting user, with profile fields (String; null where unknown)."""
    users = interactions.select(pl.col("user_id").unique(maintain_order=True))
    if profiles is None or profiles.width == 1:
        return users, {"profile_columns": []}
    profiles = profiles.with_columns(pl.exclude("user_id").cast(pl.String))
    joined = users.join(
        profiles.with_columns(pl.lit(True).alias("_known")),
        on="user_id",
        how="left",
        maintain_order="left",
    )
    report = {
        "profile_columns": [name for name in profiles.columns if name != "user_id"],
        "users_without_profile": int(joined["_known"].null_count()),
    }
    return joined.drop("_known"), report


def keep_first(frame: pl.DataFrame, key: str) -> tuple[pl.DataFrame, int]:
    """First row (lowest line) per key, and how many later duplicates were dropped."""
    first = frame.sort("line").unique(key, keep="first", maintain_order=True)
    return first, frame.height - first.height


def drop_exact_duplicates(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Rows equal to an earlier row in every column but ``line`` are dropped; the first stays.

    A line repeated in a source file (a download appended twice, a log
    written twice) is one event, not two: kept, its copy would be a sample
    whose target item already sits in its own history. ``frame`` is in line
    order, as every reader returns it. Returns the frame and the count dropped.
    """
    columns = [name for name in frame.columns if name != "line"]
    first = pl.struct(columns).is_first_distinct()
    if frame.select(first.all()).item():  # the usual case: no copy, nothing to filter
        return frame, 0
    kept = frame.filter(first)
    return kept, frame.height - kept.height


def keep_earliest_per(frame: pl.DataFrame, key: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """One row per ``key``: the earliest by timestamp, then line; source order kept."""
    group = pl.struct(*key)
    repeated = frame.filter(group.is_duplicated())
    if repeated.is_empty():  # the usual case: one cheap hash pass, no sort
        return frame, 0
    later = repeated.sort("timestamp", "line").filter(~group.is_first_distinct()).select("line")
    kept = frame.filter(~pl.col("line").is_in(later["line"].implode()))
    return kept, frame.height - kept.height


def table_counts(interactions: pl.DataFrame, items: pl.DataFrame, users: pl.DataFrame) -> dict:
    return {
        "interactions": interactions.height,
        "users": users.height,
        "items": items.height,
    }


def assemble_canonical(
    dataset: str,
    layout: str,
    interactions: pl.DataFrame,
    *,
    metadata: pl.DataFrame | None,
    profiles: pl.DataFrame | None,
    source_files: list[Path],
    report: dict[str, object],
    behaviors: pl.DataFrame | None = None,
    one_event_per: Sequence[str] = (),
) -> CanonicalData:
    """The last step of every adapter: duplicates out, items and users tables, report counts.

    ``report`` holds what the adapter counted while reading; the duplicate,
    category, profile and table counts are added here, so every dataset
    reports the same keys. Exact duplicate events are dropped from every table
    of events (``report["duplicates_dropped"]``, per table); with
    ``one_event_per`` (Amazon: user and item) only the earliest of the
    remaining events per key is kept (``report["duplicates_removed"]``).
    """
    interactions, dropped = drop_exact_duplicates(interactions)
    duplicates = {"interactions": dropped}
    if behaviors is not None:
        behaviors, duplicates["behaviors"] = drop_exact_duplicates(behaviors)
    report["duplicates_dropped"] = duplicates
    if any(duplicates.values()):
        logger.warning("%s: exact duplicate events dropped: %s", layout, duplicates)
    if one_event_per:
        interactions, removed = keep_earliest_per(interactions, one_event_per)
        report["duplicates_removed"] = removed
        logger.info(
            "%s: %d later events of the same (%s) removed",
            layout,
            removed,
            ", ".join(one_event_per),
        )
    items, category_report = items_with_categories(interactions, metadata)
    users, user_report = users_with_profiles(interactions, profiles)
    report.update(category_report)
    report.update(user_report)
    report.update(table_counts(interactions, items, users))
    return CanonicalData(
        dataset=dataset,
        layout=layout,
        interactions=interactions,
        items=items,
        users=users,
        behaviors=behaviors,
        source_files=source_files,
        report=report,
    )
