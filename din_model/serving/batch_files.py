"""The files ``din score`` reads and writes: parquet, CSV or JSON lines, by extension.

A history cell that is text (always in CSV) holds the raw item ids separated by spaces,
oldest first, or a JSON list of ids; in CSV output a list column is written the same way
(ids separated by spaces), so an output file can be scored again. Rows are numbered from
1 in file order (in CSV the header is not a row); a JSON-lines file with broken records
is read record by record so that each broken one is named by its row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from din_model.errors import ConfigError, DataError

REJECTS_SUFFIX = ".rejects.jsonl"
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMATS[".json"] = "jsonl"  # JSON lines, as the Amazon review files are
EXPECT_JSON = "a JSON object"
PROBLEM_SCHEMA = {"row": pl.Int64, "column": pl.String, "expected": pl.String, "got": pl.String}


def file_format(path: Path, role: str) -> str:
    """``parquet`` | ``csv`` | ``jsonl`` from the extension; ConfigError otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"{role} {path}: unknown file type '{path.suffix}'; use one of "
            f"{', '.join(FORMATS)} (parquet, CSV, JSON lines)"
        )
    return fmt


def rejects_path(out: Path) -> Path:
    """``<out>.rejects.jsonl``: where skipped rows go."""
    return out.with_name(out.name + REJECTS_SUFFIX)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _jsonl_lenient(path: Path) -> tuple[pl.DataFrame, np.ndarray, pl.DataFrame]:
    """Records of a JSON-lines file with broken lines, their row numbers, and the broken ones.

    Only used when the fast reader failed: each record is parsed on its own, to find
    which ones are broken (blank lines are no records, as for the fast reader).
    """
    import json

    good: list[str] = []
    numbers: list[int] = []
    broken: list[tuple[int, str | None, str, str]] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        row = 0
        for text in handle:
            if not text.strip():
                continue
            row += 1
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                good.append(text if text.endswith("\n") else text + "\n")
                numbers.append(row)
            else:
                broken.append((row, None, EXPECT_JSON, repr(text.strip()[:100])))
    try:
        frame = pl.read_ndjson("".join(good).encode()) if good else pl.DataFrame()
    except pl.exceptions.PolarsError as exc:  # valid records, but values polars cannot combine
        raise DataError(path, "JSON lines with values of one kind per field",
                        got=first_line(exc)) from None  # fmt: skip
    problems = pl.DataFrame(broken, schema=PROBLEM_SCHEMA, orient="row")
    return frame, np.asarray(numbers, dtype=np.int64), problems


def read_rows(path: Path) -> tuple[pl.DataFrame, np.ndarray, pl.DataFrame]:
    """(the file's rows as read, their 1-based row numbers, rows that are not even records)."""
    fmt = file_format(path, "input")
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise DataError(path, f"a {fmt} file of raw requests", got=what)
    try:
        if fmt == "parquet":
            frame = pl.read_parquet(path, glob=False)
        elif fmt == "csv":
            frame = pl.read_csv(path, infer_schema=False, glob=False)
        else:
            with path.open("rb") as handle:  # a handle: the name is no glob pattern
                frame = pl.read_ndjson(handle, infer_schema_length=None)
    except pl.exceptions.PolarsError as exc:
        if fmt == "jsonl":  # find the broken records, one by one
            return _jsonl_lenient(path)
        raise DataError(path, f"a readable {fmt} file", got=first_line(exc)) from None
    rows = np.arange(1, frame.height + 1, dtype=np.int64)
    return frame, rows, pl.DataFrame(schema=PROBLEM_SCHEMA)


def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """List columns as ids separated by spaces, other nested columns as JSON (CSV is flat)."""
    out = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Array):
            column, dtype = column.arr.to_list(), pl.List(dtype.inner)
        if isinstance(dtype, pl.List):
            out.append(column.list.eval(pl.element().cast(pl.String)).list.join(" ").alias(name))
        elif dtype.is_nested():
            out.append(pl.struct(name).struct.json_encode().alias(name))
        else:
            out.append(column)
    return frame.select(out)


def write_rows(frame: pl.DataFrame, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        frame.write_parquet(path)
    elif fmt == "csv":
        _csv_ready(frame).write_csv(path)
    else:
        frame.write_ndjson(path)
