"""Validation of the prepared samples: one GE run over the three splits.

GE cannot look inside list columns, so the splits are validated through a
flat frame of scalar columns derived from them: the sparse ids as they are,
and per sequence its length, smallest and largest id and number of null ids
(plus ``split``, ``hist_len`` = the first sequence's length). The
time-order checks use the audit columns of :class:`PreparedData`: the latest
history timestamp and position, gathered from the history log with the same
slices as the list columns, against the target's. A history that included its
own target (an off-by-one in the slicing) has ``hist_max_order ==
target_order`` and fails the strict check even when timestamps tie.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from din_model.data.samples.build import PreparedData
from din_model.validation.runner import check, run_suite
from din_model.validation.suites import expand_templates, load_suite_dict

STAGE = "samples"
SUITE = "samples"


def derived_frame(frame: pl.DataFrame, audit: pl.DataFrame, prepared: PreparedData) -> pl.DataFrame:
    """Scalar columns for the sample suite: ids, per-sequence stats, audit columns."""
    feature_map = prepared.feature_map
    sparse = [f.name for f in feature_map.sparse_features]
    sequences = [f.name for f in feature_map.sequence_features]
    stats = []
    for name in sequences:
        column = pl.col(name)
        stats += [
            column.list.len().alias(f"{name}__len"),
            column.list.min().alias(f"{name}__min"),
            column.list.max().alias(f"{name}__max"),
            column.list.count_matches(None).alias(f"{name}__nulls"),
        ]
    derived = frame.select(
        "user_id",
        "label",
        "timestamp",
        *sparse,
        *stats,
        pl.col(sequences[0]).list.len().alias("hist_len"),
    )
    return pl.concat([derived, audit], how="horizontal")


def sample_parameters(prepared: PreparedData) -> dict[str, Any]:
    """Suite parameters: the dataset-specific bounds of the sample suite."""
    feature_map = prepared.feature_map
    low, high = prepared.spec.positive_rate
    parameters: dict[str, Any] = {
        "max_len": feature_map.max_len,
        "n_users": int(feature_map.extra["n_users"]),
        "positive_rate_min": low,
        "positive_rate_max": high,
    }
    for name, table in feature_map.tables.items():
        parameters[f"max_id__{name}"] = table.vocab_size - 1
    return parameters


def validate_sample_splits(prepared: PreparedData) -> dict[str, Any]:
    """Run the sample suite once over all splits; raise ValidationFailed on failure.

    One run instead of one per split: GE's cost is mostly a fixed Python
    overhead per expectation and run. The ``split`` column keeps the splits
    apart where it matters: per-split positive rates (``row_condition``) and
    the split of every example bad value in the summary.
    """
    suite = expand_templates(load_suite_dict(SUITE), prepared.feature_map)
    derived = pl.concat(
        [
            derived_frame(frame, prepared.audit[split], prepared).with_columns(split=pl.lit(split))
            for split, frame in prepared.splits.items()
        ],
        how="vertical_relaxed",
    )
    run = run_suite(
        suite,
        derived,
        sample_parameters(prepared),
        batch=f"{prepared.feature_map.dataset} samples",
        index_columns=["split"],
    )
    return check([run], STAGE)
