"""Hand-built canonical tables for protocol, encoding and validation tests.

Small enough to check every sample by eye, in the exact dtypes of
din_model/data/canonical/schema.py, so the tests do not depend on the adapters.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from din_model.data.canonical.schema import INTERACTION_COLUMNS, CanonicalData


def interactions_frame(rows: Sequence[tuple], **extra: Sequence) -> pl.DataFrame:
    """Rows of (user, item, timestamp[, rating[, label]]); ``line`` is the row position."""
    user = [str(r[0]) for r in rows]
    frame = pl.DataFrame(
        {
            "user_id": user,
            "item_id": [str(r[1]) for r in rows],
            "timestamp": [int(r[2]) for r in rows],
            "rating": [float(r[3]) if len(r) > 3 and r[3] is not None else None for r in rows],
            "behavior": [None] * len(rows),
            "label": [r[4] if len(r) > 4 else None for r in rows],
            "line": list(range(len(rows))),
        },
        schema=INTERACTION_COLUMNS,
    )
    return frame.with_columns(pl.Series(name, values) for name, values in extra.items())


def canonical(
    rows: Sequence[tuple],
    categories: dict[str, str],
    *,
    layout: str = "amazon-2018",
    dataset: str = "amazon",
    users: pl.DataFrame | None = None,
    behaviors: pl.DataFrame | None = None,
    items: pl.DataFrame | None = None,
    **extra: Sequence,
) -> CanonicalData:
    if items is None:
        items = pl.DataFrame(
            {"item_id": list(categories), "category": list(categories.values())},
            schema={"item_id": pl.String, "category": pl.String},
        )
    if users is None:
        users = pl.DataFrame({"user_id": sorted({str(r[0]) for r in rows})})
    return CanonicalData(
        dataset=dataset,
        layout=layout,
        interactions=interactions_frame(rows, **extra),
        items=items,
        users=users,
        behaviors=behaviors,
    )
