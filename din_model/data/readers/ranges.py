"""Value-range checks of parsed numeric fields, run where the line is read.

A rating of 7 or a timestamp in the year 3000 parses fine as a number, so the
casts of :mod:`.fields` let it through; the Great Expectations suites catch it
later, but only as a column-level failure without file or line, and
``on_bad_lines="skip"`` could not quarantine it. Checking the range right
after the cast makes such a value a bad line like any other: located
(file, line, column, what was expected) under ``"error"``, moved to the
rejects file under ``"skip"``. Null values are left to :func:`.require_values`.
"""

from __future__ import annotations

import polars as pl

from din_model.data.canonical.schema import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    TIMESTAMP_WINDOW_TEXT,
)
from din_model.data.readers.bad_lines import BadLines
from din_model.data.readers.guard import polars_failures_located

TIMESTAMP_EXPECTED = f"a unix timestamp in seconds {TIMESTAMP_WINDOW_TEXT}"


@polars_failures_located
def require_between(
    frame: pl.DataFrame,
    column: str,
    bad: BadLines,
    *,
    low: float,
    high: float,
    expected: str,
) -> pl.DataFrame:
    """Reject rows whose numeric ``column`` lies outside ``[low, high]`` (nulls pass)."""
    value = pl.col(column)
    outside = value.is_not_null() & ((value < low) | (value > high))
    return bad.reject(frame, outside, expected=expected, column=column)


def require_plausible_timestamps(frame: pl.DataFrame, column: str, bad: BadLines) -> pl.DataFrame:
    """Reject unix-second timestamps outside the window of the canonical schema."""
    return require_between(
        frame,
        column,
        bad,
        low=EARLIEST_TIMESTAMP,
        high=LATEST_TIMESTAMP,
        expected=TIMESTAMP_EXPECTED,
    )
