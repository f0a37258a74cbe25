"""Lines that each hold one Python dict literal (Amazon 2014 metadata), read without ``eval``.

The owner's metadata files are not JSON: they are ``repr()`` of Python dicts
(single quotes). They are decoded with :func:`ast.literal_eval` only, never
``eval``. Evaluating every whole line is far too slow for the real Electronics
file (500k lines of 1-2 kB, mostly "also bought" lists nobody needs), so:

* the fast path cuts each wanted field's value out of the line with a strict
  regex (:mod:`.patterns`) and ``literal_eval``-s only the distinct value
  texts (a few thousand category paths, not 60k records);
* a line whose framing or field does not match the regex goes to the slow
  path: ``literal_eval`` of the whole line, which either yields the fields or
  shows the line is broken (then it is a bad line).

The trade-off, stated plainly: a line that is well framed and whose wanted
fields are well formed is accepted even if an unrelated field in the middle is
damaged; truncated lines, unbalanced records and malformed wanted fields are
all caught.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

import polars as pl

from din_model.data.readers import patterns
from din_model.data.readers.bad_lines import BadLines, problems_frame
from din_model.data.readers.guard import polars_failures_located

DICT_LITERAL_PER_LINE = "one Python dict literal per line"

_STRING = pl.String()
_STRING_LIST = pl.List(pl.String())
_STRING_LIST_LIST = pl.List(pl.List(pl.String()))
_VALUE_PATTERNS: dict[pl.DataType, str] = {
    _STRING: patterns.STRING_LITERAL,
    _STRING_LIST: patterns.STRING_LIST,
    _STRING_LIST_LIST: patterns.STRING_LIST_LIST,
}
_SHAPE_NAMES: dict[pl.DataType, str] = {
    _STRING: "a string",
    _STRING_LIST: "a list of strings",
    _STRING_LIST_LIST: "a list of lists of strings",
}


@polars_failures_located
def parse_dict_literal_lines(
    lines: pl.DataFrame, fields: Mapping[str, pl.DataType], bad: BadLines
) -> pl.DataFrame:
    """Extract ``fields`` from ``line``/``text`` rows holding Python dict literals.

    Supported field types: String, List(String), List(List(String)). Returns
    ``line`` plus one column per field (null where the record lacks it).
    """
    for dtype in fields.values():
        if dtype not in _VALUE_PATTERNS:
            raise ValueError(f"unsupported literal field type {dtype}")
    text = pl.col("text")
    checks = [text.str.contains(patterns.FRAMED_RECORD).alias("_framed")]
    for name, dtype in fields.items():
        checks.append(patterns.has_key(text, name).alias(f"_has_{name}"))
        checks.append(
            patterns.value_source(text, name, _VALUE_PATTERNS[dtype]).alias(f"_src_{name}")
        )
    scanned = lines.with_columns(checks)
    decoded = scanned
    for name, dtype in fields.items():
        decoded = _decode_sources(decoded, name, dtype)
    needs_full_parse = ~pl.col("_framed")
    for name in fields:
        # key present but its value unmatched or undecodable: let literal_eval decide
        needs_full_parse = needs_full_parse | ~pl.col(f"_ok_{name}")
    fast = decoded.filter(~needs_full_parse).select("line", *fields)
    slow = decoded.filter(needs_full_parse).select("line", "text")
    if slow.is_empty():
        return fast
    rescued = _parse_whole_lines(slow, fields, bad)
    return pl.concat([fast, rescued]).sort("line").rechunk()


def _decode_sources(frame: pl.DataFrame, name: str, dtype: pl.DataType) -> pl.DataFrame:
    """Add column ``name`` (the decoded value) and ``_ok_<name>`` (decoded, or key absent)."""
    column = f"_src_{name}"
    source = pl.col(column)
    if dtype == _STRING:
        # ids such as the asin: a quoted string without escapes is its own content, so
        # the tens of thousands of distinct asins need no literal_eval at all
        verbatim = source.str.slice(1, source.str.len_chars() - 2)
        needs_eval = source.str.contains("\\", literal=True)
    else:
        verbatim = pl.lit(None, dtype)
        needs_eval = source.is_not_null()
    distinct = frame.filter(needs_eval)[column].unique()
    joined = frame.join(
        _literal_mapping(distinct, name, dtype), on=column, how="left", maintain_order="left"
    )
    taken_verbatim = source.is_not_null() & ~needs_eval
    key_absent = source.is_null() & ~pl.col(f"_has_{name}")
    return joined.with_columns(
        pl.when(taken_verbatim).then(verbatim).otherwise(pl.col(name)).alias(name),
        (taken_verbatim | pl.col(f"_ok_{name}").fill_null(False) | key_absent).alias(f"_ok_{name}"),
    )


def _literal_mapping(distinct: pl.Series, name: str, dtype: pl.DataType) -> pl.DataFrame:
    """``literal_eval`` each distinct source text once: source, value, and whether it fits."""
    values: list[Any] = []
    ok: list[bool] = []
    for text in distinct.to_list():
        value = _literal_or_none(text)
        good = value is not None and _has_shape(value, dtype)
        values.append(value if good else None)
        ok.append(good)
    return pl.DataFrame(
        {distinct.name: distinct, name: values, f"_ok_{name}": ok},
        schema={distinct.name: pl.String, name: dtype, f"_ok_{name}": pl.Boolean},
    )


def _literal_or_none(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def _has_shape(value: Any, dtype: pl.DataType) -> bool:
    if value is None:
        return True
    if dtype == _STRING:
        return isinstance(value, str)
    if dtype == _STRING_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, list) and all(_has_shape(v, _STRING_LIST) for v in value)


def _parse_whole_lines(
    lines: pl.DataFrame, fields: Mapping[str, pl.DataType], bad: BadLines
) -> pl.DataFrame:
    """Slow path for the few irregular lines: literal_eval the whole record."""
    rows: list[dict[str, Any]] = []
    problems = []
    for number, text in lines.iter_rows():
        try:
            record = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
            got = f"invalid literal ({type(exc).__name__}: {exc})"
            problems.append((number, DICT_LITERAL_PER_LINE, None, got, text))
            continue
        if not isinstance(record, dict):
            got = f"a {type(record).__name__}"
            problems.append((number, DICT_LITERAL_PER_LINE, None, got, text))
            continue
        row: dict[str, Any] = {"line": number}
        for name, dtype in fields.items():
            value = record.get(name)
            if not _has_shape(value, dtype):
                problems.append((number, _SHAPE_NAMES[dtype], name, repr(value), text))
                break
            row[name] = value
        else:
            rows.append(row)
    bad.reject_problems(problems_frame(problems))
    return pl.DataFrame(rows, schema={"line": pl.Int64, **fields})
