"""JSON-lines files (Amazon reviews, Amazon 2018 metadata) read by polars, bad lines located.

The fast path hands the whole file to polars' NDJSON reader with a projected
schema (only the fields the adapter needs), which is several times faster than
decoding a string column line by line. Polars skips blank lines and reports a
syntax error without a line number, so:

* a count of the file's lines (after the parse: see :func:`read_json_lines`)
  shows whether row i is line i; only a file with blank lines is read a
  second time to number its rows;
* only when the fast path fails is the file re-read line by line and parsed in
  blocks, bisecting failing blocks down to the single bad lines, which are then
  diagnosed with :mod:`json` to say what is wrong.

Fields are best read as ``pl.String``: polars then accepts numbers too, and the
adapter casts them itself, which locates a non-numeric timestamp to its line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from din_model.data.readers.bad_lines import BadLines, problems_frame
from din_model.data.readers.guard import polars_failures_located
from din_model.data.readers.lines import read_text_lines, require_lines
from din_model.errors import DataError

logger = logging.getLogger(__name__)

_BLOCK_LINES = 20_000
JSON_OBJECT_PER_LINE = "one JSON object per line"


@polars_failures_located
def read_json_lines(path: Path, fields: Mapping[str, pl.DataType], bad: BadLines) -> pl.DataFrame:
    """Read ``fields`` of every line of a JSON-lines file (plain or gzip).

    Returns ``line`` (Int64, 0-based physical line) plus one column per field
    (null where a line lacks the field). Malformed lines go to ``bad``.
    """
    path = Path(path)
    schema = dict(fields)
    try:
        # scan_ndjson expands `*?[` in a path and has no glob=False: hand it the open file
        with path.open("rb") as handle:
            parsed = pl.scan_ndjson(handle, schema=schema).collect()
        # counted after, not with collect_all: when one query of a collect_all fails,
        # polars 2.1 panics in its executor threads and later reads can hang for ever
        counted = pl.scan_lines(path, glob=False).select(pl.len()).collect()
    except FileNotFoundError as exc:
        raise DataError(path, "an existing file", got="no such file") from exc
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
        logger.info("%s: fast JSON read failed (%s); locating the bad lines", path.name, exc)
    else:
        if parsed.is_empty():
            raise DataError(path, JSON_OBJECT_PER_LINE, got="an empty file")
        if parsed.height == counted.item():  # no blank line: row i is line i
            return parsed.with_row_index("line").select(pl.col("line").cast(pl.Int64), *schema)
        # polars skipped blank lines: number the rows by the non-blank lines
        non_blank = read_text_lines(path, bad=bad)
        if non_blank.height == parsed.height:
            return parsed.with_columns(non_blank["line"]).select("line", *schema)
        logger.info("%s: rows and non-blank lines differ; reading line by line", path.name)
    lines = read_text_lines(path, bad=bad)
    require_lines(lines, path, JSON_OBJECT_PER_LINE)
    return parse_json_lines(lines, schema, bad)


@polars_failures_located
def parse_json_lines(
    lines: pl.DataFrame, fields: Mapping[str, pl.DataType], bad: BadLines
) -> pl.DataFrame:
    """Parse a frame of ``line``/``text`` rows as JSON objects; bad lines go to ``bad``.

    Blocks of lines are parsed by polars; a failing block is split in halves
    until the bad lines are isolated, so a few bad lines cost a few extra
    parses, not a Python loop over the file.
    """
    schema = dict(fields)
    good: list[pl.DataFrame] = []
    problems = []
    pending = [lines.slice(offset, _BLOCK_LINES) for offset in range(0, lines.height, _BLOCK_LINES)]
    while pending:
        block = pending.pop()
        parsed = _try_parse_block(block["text"], schema)
        if parsed is not None:
            good.append(parsed.with_columns(block["line"]).select("line", *schema))
        elif block.height > 1:
            half = block.height // 2
            pending.extend([block.slice(half), block.slice(0, half)])
        else:
            number, text = block.row(0)
            expected, column, got = _diagnose_json_line(text, schema)
            problems.append((number, expected, column, got, text))
    bad.reject_problems(problems_frame(problems))
    if not good:
        return pl.DataFrame(schema={"line": pl.Int64, **schema})
    # one chunk: polars 2.1 panics in some expressions on filtered multi-chunk strings
    return pl.concat(good).sort("line").rechunk()


def _try_parse_block(texts: pl.Series, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    payload = "\n".join(texts.to_list()).encode("utf-8")
    try:
        parsed = pl.read_ndjson(payload, schema=schema)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException):
        return None  # bisected down to the bad lines, which are then diagnosed
    return parsed if parsed.height == texts.len() else None


def _diagnose_json_line(
    text: str, schema: Mapping[str, pl.DataType]
) -> tuple[str, str | None, str]:
    """Say why one line failed: invalid JSON, not an object, or a field of the wrong shape."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        return JSON_OBJECT_PER_LINE, None, f"invalid JSON ({exc})"
    except RecursionError:  # e.g. 200,000 nested "[": Python's decoder gives up
        return JSON_OBJECT_PER_LINE, None, "JSON nested too deeply to decode"
    if not isinstance(value, dict):
        return JSON_OBJECT_PER_LINE, None, f"a JSON {type(value).__name__}"
    for name, dtype in schema.items():
        field = value.get(name)
        if field is None:
            continue
        if isinstance(dtype, pl.List) and not isinstance(field, list):
            return "a list of strings", name, json.dumps(field)
        if dtype == pl.String and isinstance(field, dict | list):
            return "a single value", name, json.dumps(field)
    return JSON_OBJECT_PER_LINE, None, "a line polars cannot read"
