"""Helpers for the adapter tests: write small raw files in the owners' formats."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from pathlib import Path


def write_lines(
    path: Path, lines: Iterable[str], *, encoding: str = "utf-8", newline: str = "\n"
) -> Path:
    """Write ``lines`` (gzip when the name ends in .gz) and return the path."""
    data = "".join(line + newline for line in lines).encode(encoding)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


def copy_with_edits(source: Path, target: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    """Copy a real raw file into a temporary folder, changing some of its lines."""
    return write_lines(target, edit(read_lines(source)))


def review(user: str, asin: str, ts: int, overall: float = 5.0, **extra: object) -> str:
    """One Amazon review line (JSON), with the fields of the real files."""
    record = {
        "reviewerID": user,
        "asin": asin,
        "reviewerName": "Someone",
        "helpful": [0, 0],
        "reviewText": "fine",
        "overall": overall,
        "summary": "ok",
        "unixReviewTime": ts,
        "reviewTime": "01 1, 2014",
        **extra,
    }
    return json.dumps(record)


def meta_2014(asin: str, categories: list[list[str]] | None, **extra: object) -> str:
    """One Amazon 2014 metadata line: a Python dict literal (``repr``), not JSON."""
    record: dict[str, object] = {"asin": asin, "title": f"item {asin}", **extra}
    if categories is not None:
        record["categories"] = categories
    return repr(record)
