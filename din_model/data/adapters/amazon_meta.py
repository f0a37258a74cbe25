"""Amazon item metadata: the category of every reviewed item, and nothing more.

The real metadata files are large (Electronics 2014: ~500k lines of 1-2 kB,
most of them items nobody reviewed in the 5-core set), so the ``asin`` of every
line is cut out with a vectorised regex first and only the lines of reviewed
items are parsed. Consequence, stated plainly: a broken line of an item that
is never reviewed goes unnoticed.

* 2014: one Python dict literal per line; category = last entry of the FIRST
  path in ``categories`` (the DIN protocol).
* 2018: JSON lines; category = last entry of ``category``. The files repeat
  some asins: the first occurrence wins.
"""

from __future__ import annotations

import logging
from pathlib import Path

import polars as pl

from din_model.data.readers import (
    parse_dict_literal_lines,
    parse_json_lines,
    read_text_lines,
    require_lines,
    require_values,
)
from din_model.data.readers.bad_lines import BadLines
from din_model.data.readers.patterns import plain_string_value

from ._tables import keep_first

logger = logging.getLogger(__name__)

AMAZON_2014 = "amazon-2014"
AMAZON_2018 = "amazon-2018"


def read_item_categories(
    path: Path, layout: str, reviewed: pl.Series, bad: BadLines
) -> tuple[pl.DataFrame, dict[str, object]]:
    """``item_id``/``category`` (null when empty) of the reviewed items found in ``path``."""
    lines = read_text_lines(path, bad=bad)
    require_lines(lines, path, "one metadata record per line")
    wanted = reviewed.unique().implode()
    quick_asin = plain_string_value(pl.col("text"), "asin")
    # lines whose asin the regex cannot see are parsed too: they are either
    # unusual but valid, or broken (then reported as bad lines)
    candidates = lines.filter(quick_asin.is_null() | quick_asin.is_in(wanted))
    if layout == AMAZON_2014:
        records = parse_dict_literal_lines(
            candidates, {"asin": pl.String(), "categories": pl.List(pl.List(pl.String()))}, bad
        )
        category = pl.col("categories").list.first().list.last()
    else:
        records = parse_json_lines(
            candidates, {"asin": pl.String(), "category": pl.List(pl.String())}, bad
        )
        category = pl.col("category").list.last()
    records = require_values(records, ["asin"], bad)
    records = records.filter(pl.col("asin").is_in(wanted)).select(
        "line", pl.col("asin").alias("item_id"), category.alias("category")
    )
    first, duplicates = keep_first(records, "item_id")
    logger.info(
        "%s: %d metadata lines, %d parsed for reviewed items, %d duplicate asins dropped",
        path.name,
        lines.height,
        candidates.height,
        duplicates,
    )
    report = {
        "metadata_lines": lines.height,
        "metadata_lines_parsed": candidates.height,
        "metadata_duplicate_items": duplicates,
    }
    return first.select("item_id", "category"), report
