"""A few rows of model inputs, saved with every run as the registered model's input example.

Taken from the test split already in memory when it is scored, so the logging
step needs no split of its own. Ids are int64 and histories int64 lists of
their real length (oldest first): the signature MLflow infers from this
accepts any integer width and any history length.
"""

from __future__ import annotations

import polars as pl

from din_model.data.specs.feature_map import FeatureMap
from din_model.tensors.split import SplitTensors

EXAMPLE_ROWS = 5


def input_example(
    split: SplitTensors, feature_map: FeatureMap, rows: int = EXAMPLE_ROWS
) -> pl.DataFrame:
    """The first ``rows`` rows of ``split`` as one column per model feature."""
    count = min(rows, len(split))
    lengths = split.lengths[:count].cpu().tolist()
    columns: dict[str, pl.Series] = {}
    for spec in feature_map.features:
        if spec.kind == "sequence":
            values = split.sequences[spec.name][:count].cpu().tolist()
            lists = [row[:length] for row, length in zip(values, lengths, strict=True)]
            columns[spec.name] = pl.Series(spec.name, lists, dtype=pl.List(pl.Int64))
        else:
            ids = split.sparse[spec.name][:count].cpu().tolist()
            columns[spec.name] = pl.Series(spec.name, ids, dtype=pl.Int64)
    return pl.DataFrame(columns)
