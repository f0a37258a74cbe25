"""Row checks of a batch of raw requests: each bad value named by its row and column.

A bad row (a missing candidate ``item_id`` or ``timestamp``, an id that is a fraction, a
timestamp that is not unix seconds in the window the readers accept, a history that does
not parse) is recorded with what was expected and what was found; ``din score`` stops at
the first (``on_bad_lines="error"``) or sets them aside (``"skip"``). Missing profile
values are not bad: they encode to OOV, as in training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from din_model.data.canonical.schema import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    TIMESTAMP_WINDOW_TEXT,
)
from din_model.data.readers.bad_lines import MISSING
from din_model.data.samples.raw_inputs import TIMESTAMP
from din_model.errors import DataError
from din_model.serving.batch_files import PROBLEM_SCHEMA

EXPECT_ID = "an id (text or an integer)"
EXPECT_ITEM = "the candidate's item id (text or an integer)"
EXPECT_USER = "the user's id, to find the user's earlier events"
EXPECT_TIMESTAMP = f"unix seconds (an integer) {TIMESTAMP_WINDOW_TEXT}"
EXPECT_HISTORY = "item ids separated by spaces, or a JSON list of item ids (oldest first)"
EXPECT_ID_LIST = "a list of item ids (text or integers)"
# a JSON list of strings and integers; a list of anything else is not a history
_JSON_LIST = r'^\[\s*(?:(?:"(?:[^"\\]|\\.)*"|-?\d+)(?:\s*,\s*(?:"(?:[^"\\]|\\.)*"|-?\d+))*)?\s*\]$'
_PLAIN_IDS = r'^[^\[\]{}",]*$'  # ids separated by whitespace: no brackets, quotes or commas


class BadRow(DataError):
    """One row of the input file holds something the model cannot take."""

    def __init__(
        self, path: str | Path, row: int, expected: str, *, column: str | None, got: str | None
    ) -> None:
        super().__init__(path, expected, column=column, got=got)
        self.row = row
        message = f"{self.path}: row {row}"
        if column is not None:
            message += f": column '{column}'"
        message += f": expected {expected}"
        if got is not None:
            message += f", got {got if len(got) <= 120 else got[:117] + '...'}"
        self.args = (message + " (--on-bad-lines skip sets bad rows aside)",)


def _got(values: pl.Series) -> pl.Series:
    """Found values for messages: 'abc' in quotes, or MISSING where null."""
    text = values.cast(pl.String)
    quoted = pl.when(text.is_null()).then(pl.lit(MISSING)).otherwise("'" + text + "'")
    return pl.select(quoted).to_series() if len(text) else text


class RowChecks:
    """The problems found in the rows of one file, and the rows' numbers."""

    def __init__(self, path: Path, rows: np.ndarray) -> None:
        self.path = path
        self.rows = rows
        self.found: list[pl.DataFrame] = []

    def flag(self, bad: pl.Series, column: str, expected: str, values: pl.Series) -> None:
        """Record rows where ``bad`` is true (``values`` show what was found)."""
        bad = bad.fill_null(False)
        if not bad.any():
            return
        positions = np.flatnonzero(bad.to_numpy())
        self.found.append(
            pl.DataFrame(
                {
                    "row": self.rows[positions],
                    "column": [column] * len(positions),
                    "expected": [expected] * len(positions),
                    "got": _got(values.gather(positions)),
                },
                schema=PROBLEM_SCHEMA,
            )
        )

    def column_error(self, column: str, expected: str, dtype: pl.DataType) -> DataError:
        return DataError(self.path, expected, column=column, got=f"a column of {dtype}")

    def problems(self) -> pl.DataFrame:
        if not self.found:
            return pl.DataFrame(schema=PROBLEM_SCHEMA)
        return pl.concat(self.found).sort("row", maintain_order=True)


def id_text(
    values: pl.Series, column: str, checks: RowChecks, *, required: str | None
) -> pl.Series:
    """Ids as text (integers in decimal), as the encoder compares them; flags bad rows.

    ``required`` is what to expect of a row whose value is missing; None: a missing
    value is fine (it encodes to OOV).
    """
    dtype = values.dtype
    if dtype == pl.String or dtype == pl.Null or dtype.is_integer():
        text = values.cast(pl.String)
    elif dtype.is_float():
        whole = values.is_finite() & (values == values.floor())
        checks.flag(values.is_not_null() & ~whole, column, EXPECT_ID, values)
        text = pl.select(pl.when(whole).then(values).cast(pl.Int64).cast(pl.String)).to_series()
    else:
        raise checks.column_error(column, f"a column of ids ({EXPECT_ID})", dtype)
    if required is not None:
        checks.flag(values.is_null(), column, required, values)
    return text.alias(column)


def unix_seconds(values: pl.Series, checks: RowChecks) -> pl.Series:
    """``timestamp`` as Int64 unix seconds; flags missing, non-integer and implausible values."""
    dtype = values.dtype
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        seconds = values.dt.epoch("s")
    elif dtype.is_integer() or dtype == pl.Null:
        seconds = values.cast(pl.Int64)
    elif dtype.is_float():
        whole = values.is_finite() & (values == values.floor())
        seconds = pl.select(pl.when(whole).then(values).cast(pl.Int64)).to_series()
    elif dtype == pl.String:
        seconds = values.str.strip_chars().cast(pl.Int64, strict=False)
    else:
        raise checks.column_error(TIMESTAMP, f"a column of {EXPECT_TIMESTAMP}", dtype)
    outside = (seconds < EARLIEST_TIMESTAMP) | (seconds > LATEST_TIMESTAMP)
    checks.flag(seconds.is_null() | outside, TIMESTAMP, EXPECT_TIMESTAMP, values)
    return seconds.alias(TIMESTAMP)


def history_lists(values: pl.Series, column: str, checks: RowChecks) -> pl.Series:
    """A history column as ``List(String)`` of raw ids, oldest first; flags unparsable rows."""
    dtype = values.dtype
    if dtype == pl.Null:
        return pl.Series(column, [[]] * len(values), dtype=pl.List(pl.String))
    if isinstance(dtype, pl.Array):
        values, dtype = values.arr.to_list(), pl.List(dtype.inner)
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        if inner == pl.String or inner == pl.Null or inner.is_integer():
            lists = values.cast(pl.List(pl.String))
        elif inner.is_float():
            item = pl.element()
            whole = item.is_finite() & (item == item.floor())
            checks.flag(values.list.eval(~whole).list.any(), column, EXPECT_ID_LIST, values)
            lists = values.list.eval(pl.when(whole).then(item).cast(pl.Int64))
            lists = lists.cast(pl.List(pl.String))
        else:
            raise checks.column_error(column, "a column of lists of item ids", dtype)
        return lists.fill_null([]).alias(column)
    if dtype != pl.String:
        raise checks.column_error(column, f"a column of histories ({EXPECT_HISTORY})", dtype)
    text = values.str.strip_chars()
    is_json = text.str.starts_with("[")
    good_json = is_json & text.str.contains(_JSON_LIST)
    good_plain = ~is_json & text.str.contains(_PLAIN_IDS)
    checks.flag(text.is_not_null() & ~good_json & ~good_plain, column, EXPECT_HISTORY, values)
    decoded = (
        pl.select(pl.when(good_json).then(text).otherwise(pl.lit("[]")))
        .to_series()
        .str.json_decode(pl.List(pl.String))
    )
    split = text.str.extract_all(r"\S+")
    lists = pl.select(pl.when(good_json).then(decoded).when(good_plain).then(split)).to_series()
    return lists.cast(pl.List(pl.String)).fill_null([]).alias(column)
