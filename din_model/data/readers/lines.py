"""Read a raw text file (plain or gzip) as one string per line, keeping line numbers.

Every reader starts from here so that line numbers mean the same thing
everywhere: ``line`` is the 0-based physical line of the file (blank lines
included in the count), and error messages show it 1-based. Decoding is done by
polars in Rust; the per-line Python path only runs when a file turns out not to
be valid UTF-8, to find and reject the undecodable lines.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import polars as pl

from din_model.data.readers.bad_lines import BadLines, problems_frame
from din_model.data.readers.guard import polars_failures_located
from din_model.errors import DataError

logger = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
LINE_SCHEMA = {"line": pl.Int64(), "text": pl.String()}


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes (whatever its name says)."""
    with Path(path).open("rb") as handle:
        return handle.read(2) == _GZIP_MAGIC


def read_raw_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip; a truncated gzip is a DataError."""
    path = Path(path)
    raw = _read_file_bytes(path)
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(path, "a complete gzip file", got=f"{exc} (truncated download?)") from exc


def _read_file_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(path, "an existing file", got="no such file") from exc
    except IsADirectoryError as exc:
        raise DataError(path, "a file", got="a directory") from exc


@polars_failures_located
def read_text_lines(
    path: Path,
    *,
    encoding: str = "utf-8",
    keep_blank: bool = False,
    bad: BadLines | None = None,
) -> pl.DataFrame:
    """Return ``line`` (Int64, 0-based) and ``text`` (String, without the line end).

    ``encoding`` is ``"utf-8"`` or ``"latin-1"`` (MovieLens item files). Blank
    lines are dropped unless ``keep_blank``; their numbers stay counted. Lines
    that are not valid UTF-8 go to ``bad`` (or are decoded with replacement
    characters when ``bad`` is None, for showing rejected lines).
    """
    path = Path(path)
    if encoding.lower().replace("_", "-") in ("latin-1", "latin1", "iso-8859-1"):
        frame = _lines_from_text(read_raw_bytes(path).decode("latin-1"))
    elif encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        frame = _read_utf8_lines(path, bad)
    else:
        raise ValueError(f"unsupported encoding {encoding!r}")
    if frame.height and frame["text"][0].startswith("\ufeff"):
        frame = frame.with_columns(
            pl.when(pl.col("line") == 0)
            .then(pl.col("text").str.strip_prefix("\ufeff"))
            .otherwise(pl.col("text"))
            .alias("text")
        )
    if not keep_blank:
        frame = frame.filter(pl.col("text").str.contains(r"\S"))
    return frame


def _lines_from_text(text: str) -> pl.DataFrame:
    frame = pl.read_lines(text.encode("utf-8"), name="text", row_index_name="line")
    return frame.select(pl.col("line").cast(pl.Int64), pl.col("text"))


def _read_utf8_lines(path: Path, bad: BadLines | None) -> pl.DataFrame:
    if not path.is_file():
        _read_file_bytes(path)  # raises the right DataError
    try:
        # glob=False: a path is a path; `ml[1]/u.data` must not read `ml1/u.data`
        frame = pl.read_lines(path, name="text", row_index_name="line", glob=False)
    except pl.exceptions.ComputeError as exc:
        if "utf8" not in str(exc).lower() and "utf-8" not in str(exc).lower():
            raise DataError(path, "a readable text file", got=str(exc)) from exc
        return _decode_lines_one_by_one(path, bad)
    except OSError as exc:
        raise DataError(
            path, "a complete, readable file", got=f"{exc} (truncated download?)"
        ) from exc
    return frame.select(pl.col("line").cast(pl.Int64), pl.col("text"))


def _decode_lines_one_by_one(path: Path, bad: BadLines | None) -> pl.DataFrame:
    """Slow path, only for files that are not valid UTF-8: find the undecodable lines."""
    raw_lines = read_raw_bytes(path).split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    lines: list[int] = []
    texts: list[str] = []
    problems = []
    for number, raw in enumerate(raw_lines):
        raw = raw.removesuffix(b"\r")
        try:
            texts.append(raw.decode("utf-8"))
            lines.append(number)
        except UnicodeDecodeError as exc:
            if bad is None:
                texts.append(raw.decode("utf-8", errors="replace"))
                lines.append(number)
                continue
            shown = raw.decode("utf-8", errors="replace")
            got = f"a byte that is not UTF-8 at position {exc.start}"
            problems.append((number, "UTF-8 text", None, got, shown))
    if bad is not None:
        bad.reject_problems(problems_frame(problems))
    return pl.DataFrame({"line": lines, "text": texts}, schema=LINE_SCHEMA)


def require_lines(frame: pl.DataFrame, path: Path, what: str = "at least one data line") -> None:
    """Raise when a file has no (non-blank) line; an empty file is never a bad line to skip."""
    if frame.is_empty():
        raise DataError(path, what, got="an empty file")
