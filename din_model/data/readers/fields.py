"""Vectorised checks and casts of parsed String fields, each bad value located to its line.

Readers return every field as text; the adapter says which fields are required
and which must be numbers. A cast that fails is not an exception from deep in
polars but a bad line (file, line, column, expected, found) under the
``on_bad_lines`` policy.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

import polars as pl

from din_model.data.readers.bad_lines import BadLines
from din_model.data.readers.guard import polars_failures_located

_INT64_LIMIT = 9.2e18


@polars_failures_located
def require_values(frame: pl.DataFrame, columns: Iterable[str], bad: BadLines) -> pl.DataFrame:
    """Reject rows where a required field is missing, null or blank."""
    for column in columns:
        value = pl.col(column)
        blank = value.is_null() | ~value.cast(pl.String).str.contains(r"\S")
        frame = bad.reject(frame, blank, expected="a non-empty value", column=column)
    return frame


@polars_failures_located
def reject_structured(frame: pl.DataFrame, columns: Iterable[str], bad: BadLines) -> pl.DataFrame:
    """Reject ids that came from a JSON list or object (polars renders them as text)."""
    for column in columns:
        nested = pl.col(column).str.contains(r"^\s*[\[{]")
        frame = bad.reject(frame, nested, expected="a single string or number", column=column)
    return frame


@polars_failures_located
def parse_integers(
    frame: pl.DataFrame, column: str, bad: BadLines, *, expected: str = "an integer"
) -> pl.DataFrame:
    """Cast text ``column`` to Int64; "1393372800.0" is accepted, "abc" or "1.5" rejected."""
    raw = pl.col(column).cast(pl.String).str.strip_chars()
    frame = frame.with_columns(pl.col(column).cast(pl.Int64, strict=False).alias("_parsed"))
    unparsed = pl.col(column).is_not_null() & pl.col("_parsed").is_null()
    if frame.select(unparsed.any()).item():  # rare: spaces, "123.0", or real garbage
        as_float = raw.cast(pl.Float64, strict=False)
        whole = (
            as_float.is_finite() & (as_float == as_float.floor()) & (as_float.abs() < _INT64_LIMIT)
        )
        fallback = pl.coalesce(
            raw.cast(pl.Int64, strict=False),
            pl.when(whole).then(as_float.cast(pl.Int64, strict=False)),
        )
        frame = frame.with_columns(pl.coalesce("_parsed", fallback).alias("_parsed"))
        frame = bad.reject(
            frame,
            (raw != "") & pl.col("_parsed").is_null(),
            expected=expected,
            column=column,
        )
    return frame.with_columns(pl.col("_parsed").alias(column)).drop("_parsed")


@polars_failures_located
def parse_floats(
    frame: pl.DataFrame, column: str, bad: BadLines, *, expected: str = "a number"
) -> pl.DataFrame:
    """Cast text ``column`` to Float64; non-numbers, NaN and infinities are rejected."""
    value = pl.col(column).cast(pl.Float64, strict=False)
    frame = frame.with_columns(pl.when(value.is_finite()).then(value).alias("_parsed"))
    unparsed = pl.col(column).is_not_null() & pl.col("_parsed").is_null()
    if frame.select(unparsed.any()).item():  # rare: spaces around the number, or garbage
        raw = pl.col(column).cast(pl.String).str.strip_chars()
        stripped = raw.cast(pl.Float64, strict=False)
        frame = frame.with_columns(
            pl.coalesce("_parsed", pl.when(stripped.is_finite()).then(stripped)).alias("_parsed")
        )
        frame = bad.reject(
            frame, (raw != "") & pl.col("_parsed").is_null(), expected=expected, column=column
        )
    return frame.with_columns(pl.col("_parsed").alias(column)).drop("_parsed")


@polars_failures_located
def require_allowed(
    frame: pl.DataFrame, column: str, allowed: Collection[str], bad: BadLines
) -> pl.DataFrame:
    """Reject rows whose ``column`` is not one of ``allowed`` (e.g. pv/cart/fav/buy)."""
    shown = "/".join(sorted(allowed))
    return bad.reject(
        frame,
        ~pl.col(column).is_in(list(allowed)),
        expected=f"one of {shown}",
        column=column,
    )


@polars_failures_located
def integer_ids_as_text(
    frame: pl.DataFrame, columns: Iterable[str], bad: BadLines, *, what: str = "an integer id"
) -> pl.DataFrame:
    """Check that id fields are integers and store them in canonical text form ("007" -> "7")."""
    for column in columns:
        frame = parse_integers(frame, column, bad, expected=what)
        frame = frame.with_columns(pl.col(column).cast(pl.String))
    return frame
