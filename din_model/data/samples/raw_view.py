"""The samples of a split in raw request form: what a serving system would have sent.

The protocol's sample index holds dictionary codes; every code decodes to the raw value
the canonical tables hold (a dictionary spans all splits, so nothing is lost to OOV).
Decoding the same index that the prepared splits were encoded from gives, row for row,
the raw request of every prepared sample: the user's raw id and profile values, the
candidate's raw item id, the timestamp and the history as raw item ids, oldest first.
Item attributes that a request may leave out (:mod:`raw_inputs`) are left out here, so
that the served model looks them up as it would in production.

Used for the registered model's input example and for the training/serving parity check.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from din_model.data.encoding.coded import CodedData
from din_model.data.encoding.vocabulary import Dictionary
from din_model.data.protocols.base import SPLIT_CODES, ProtocolResult
from din_model.data.protocols.history import gather_index
from din_model.data.samples.raw_inputs import TIMESTAMP, USER_ID, RawInput


def _decode(dictionary: Dictionary, codes: np.ndarray) -> pl.Series:
    """Raw values of ``codes``; the null code decodes to null."""
    values = dictionary.values.extend_constant(None, 1)
    return values.gather(pl.Series(codes, dtype=pl.Int64))


def raw_rows(
    coded: CodedData,
    result: ProtocolResult,
    inputs: list[RawInput],
    split: str = "test",
    rows: int | None = None,
) -> pl.DataFrame:
    """The first ``rows`` samples of ``split`` (all by default) as raw requests, plus ``label``."""
    samples = result.samples
    return raw_selection(
        coded, result, inputs, np.flatnonzero(samples.split == SPLIT_CODES[split])[:rows]
    )


def raw_selection(
    coded: CodedData,
    result: ProtocolResult,
    inputs: list[RawInput],
    selection: np.ndarray,
) -> pl.DataFrame:
    """The samples at ``selection`` (a boolean mask or sample indices) as raw requests + ``label``.

    Rows come in the selection's order (sample order for a mask), whatever their split:
    the held-back slice of an arriving source is chosen by event, not by split.
    """
    part = result.samples.take(np.asarray(selection))
    spec = coded.spec
    columns: dict[str, pl.Series] = {USER_ID: _decode(coded.users, part.user).alias(USER_ID)}
    offsets, index = gather_index(part.hist_start, part.hist_end)
    for raw in inputs:
        if raw.from_items or raw.column in columns:
            continue
        dictionary = coded.tables[raw.table]
        decl = spec.feature(raw.feature)
        if raw.derived is not None:
            columns[TIMESTAMP] = pl.Series(TIMESTAMP, part.timestamp, dtype=pl.Int64)
        elif raw.kind == "sequence":
            values = _decode(dictionary, result.history.columns[raw.feature][index])
            lists = pa.LargeListArray.from_arrays(pa.array(offsets), values.to_arrow())
            columns[raw.column] = pl.Series(raw.column, pl.from_arrow(lists))
        elif decl.group == "user_profile":
            codes = coded.user_features[raw.feature][part.user]
            columns[raw.column] = _decode(dictionary, codes).alias(raw.column)
        elif decl.group == "ad":
            columns[raw.column] = _decode(dictionary, part.item).alias(raw.column)
        else:  # a context column of the interactions (the display-ad ``pid``)
            codes = coded.interactions.columns[raw.feature][part.source_row]
            columns[raw.column] = _decode(dictionary, codes).alias(raw.column)
    if TIMESTAMP not in columns:
        columns[TIMESTAMP] = pl.Series(TIMESTAMP, part.timestamp, dtype=pl.Int64)
    columns["label"] = pl.Series("label", part.label, dtype=pl.Int8)
    return pl.DataFrame(list(columns.values()))
