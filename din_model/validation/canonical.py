"""Validation of the canonical tables (the adapters' output), before any sampling.

One GE suite per table (``expectations/canonical_<table>.json``). Besides the
table's own columns the interactions frame carries one derived column,
``item_in_items``, so that "every interaction's item has an items row" is a
plain row-level expectation with example bad values.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from din_model.data.canonical.schema import CanonicalData
from din_model.validation.runner import check, run_suite
from din_model.validation.suites import load_suite_dict

STAGE = "canonical"


def canonical_frames(data: CanonicalData) -> dict[str, pl.DataFrame]:
    """The columns each canonical suite looks at (plus derived ones), per table."""
    interactions = data.interactions.select(
        "user_id", "item_id", "timestamp", "line", "rating", "label"
    ).with_columns(item_in_items=pl.col("item_id").is_in(data.items["item_id"].implode()))
    frames = {
        "interactions": interactions,
        "items": data.items.select("item_id", "category"),
        "users": data.users.select("user_id"),
    }
    if data.behaviors is not None:
        frames["behaviors"] = data.behaviors.select("user_id", "timestamp", "category")
    return frames


def validate_canonical_tables(data: CanonicalData) -> dict[str, Any]:
    """Run every canonical suite; raise ValidationFailed with a summary if one fails."""
    runs = []
    for table, frame in canonical_frames(data).items():
        suite = load_suite_dict(f"canonical_{table}")
        runs.append(run_suite(suite, frame, {}, batch=f"{data.dataset}/{table}"))
    return check(runs, STAGE)
