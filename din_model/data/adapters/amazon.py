"""Amazon product reviews (2014 and 2018 releases) to the canonical tables.

Files (one category per directory, as the owners ship them):

* 2014: ``reviews_<Cat>_5.json.gz`` (JSON lines) + ``meta_<Cat>.json.gz`` (one
  Python dict literal per line);
* 2018: ``<Cat>_5.json.gz`` (JSON lines) + ``meta_<Cat>.json.gz`` (JSON lines).

Reviews become interactions with ``behavior = "review"`` and the star rating.
Exact duplicate reviews are dropped like any dataset's (``duplicates_dropped``);
a user who reviewed the same item again keeps only the earliest review (by
timestamp, then line; ``duplicates_removed``), because the DIN protocol treats
(user, item) as one event and a repeat would leak the target into its own
history. Both happen in :func:`._tables.assemble_canonical`. A missing
metadata file is allowed (Musical Instruments has none here): every item is
then ``unknown``, with a warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import CanonicalData
from din_model.data.readers import (
    parse_floats,
    parse_integers,
    read_json_lines,
    reject_structured,
    require_between,
    require_plausible_timestamps,
    require_values,
)
from din_model.data.readers.bad_lines import BadLinePolicy, BadLines

from ._sources import ambiguous_files, require_not_dangling, visible_files
from ._tables import (
    assemble_canonical,
    canonical_interactions,
    require_rows,
)
from .amazon_meta import AMAZON_2014, AMAZON_2018, read_item_categories

logger = logging.getLogger(__name__)

LAYOUT_FILES = {
    AMAZON_2014: "reviews_<Category>_5.json[.gz] (JSON lines) with optional "
    "meta_<Category>.json[.gz] (Python dict literals)",
    AMAZON_2018: "<Category>_5.json[.gz] (JSON lines) with optional "
    "meta_<Category>.json[.gz] (JSON lines)",
}
_REVIEWS_2014 = re.compile(r"^reviews_(?P<category>.+)_5(?:\.[\w-]+)?\.json(?:\.gz)?$")
_REVIEWS_2018 = re.compile(r"^(?!reviews_|meta_)(?P<category>.+)_5(?:\.[\w-]+)?\.json(?:\.gz)?$")
_REVIEW_FIELDS = {
    "reviewerID": pl.String(),
    "asin": pl.String(),
    "overall": pl.String(),
    "unixReviewTime": pl.String(),
}
STAR_RANGE = (1.0, 5.0)  # ``overall``: whole stars


def _layout_of(name: str) -> str | None:
    if _REVIEWS_2014.match(name):
        return AMAZON_2014
    if _REVIEWS_2018.match(name):
        return AMAZON_2018
    return None


def find_reviews_file(source: Path) -> Path | None:
    """The reviews file at ``source`` (a file, or a directory holding exactly one)."""
    if source.is_file():
        return source if _layout_of(source.name) else None
    candidates = [name for name in visible_files(source) if _layout_of(name)]
    if len(candidates) > 1:
        raise ambiguous_files(
            source,
            "Amazon reviews file",
            candidates,
            "pass the one to use as --source (the file path instead of the directory)",
        )
    if not candidates:
        return None
    require_not_dangling(source / candidates[0], "a readable reviews file")
    return source / candidates[0]


def detect(source: Path) -> str | None:
    reviews = find_reviews_file(source)
    return _layout_of(reviews.name) if reviews is not None else None


def find_metadata_file(reviews: Path) -> Path | None:
    """``meta_<Category>.json[.gz]`` next to the reviews file, if present (not a broken link)."""
    match = _REVIEWS_2014.match(reviews.name) or _REVIEWS_2018.match(reviews.name)
    assert match is not None
    stem = f"meta_{match['category']}.json"
    for name in (stem + ".gz", stem):
        require_not_dangling(reviews.parent / name)
    found = [
        reviews.parent / name for name in (stem + ".gz", stem) if (reviews.parent / name).is_file()
    ]
    if len(found) > 1:
        logger.warning(
            "both %s and %s exist; reading %s", found[0].name, found[1].name, found[0].name
        )
    return found[0] if found else None


def read(source: Path, layout: str, policy: BadLinePolicy) -> CanonicalData:
    reviews_path = find_reviews_file(source)
    assert reviews_path is not None, "detect() accepted this source"
    interactions, review_report = read_reviews(reviews_path, policy.for_file(reviews_path))
    report: dict[str, object] = {"reviews_file": reviews_path.name, **review_report}
    meta_path = find_metadata_file(reviews_path)
    source_files = [reviews_path]
    metadata = None
    if meta_path is None:
        logger.warning(
            "no metadata file meta_<Category>.json[.gz] next to %s: every item gets the "
            "category 'unknown'",
            reviews_path.name,
        )
        report["metadata_missing"] = True
    else:
        metadata, meta_report = read_item_categories(
            meta_path, layout, interactions["item_id"], policy.for_file(meta_path)
        )
        source_files.append(meta_path)
        report.update({"metadata_missing": False, "metadata_file": meta_path.name, **meta_report})
    return assemble_canonical(
        "amazon",
        layout,
        interactions,
        metadata=metadata,
        profiles=None,
        source_files=source_files,
        report=report,
        one_event_per=("user_id", "item_id"),
    )


def read_reviews(path: Path, bad: BadLines) -> tuple[pl.DataFrame, dict[str, object]]:
    """Canonical interactions from a reviews file, every valid review (duplicates included)."""
    frame = read_json_lines(path, _REVIEW_FIELDS, bad)
    frame = require_values(frame, ["reviewerID", "asin", "unixReviewTime"], bad)
    frame = reject_structured(frame, ["reviewerID", "asin"], bad)
    frame = parse_integers(frame, "unixReviewTime", bad, expected="an integer unix timestamp")
    frame = require_plausible_timestamps(frame, "unixReviewTime", bad)
    frame = parse_floats(frame, "overall", bad, expected="a numeric star rating")
    low, high = STAR_RANGE
    frame = require_between(
        frame,
        "overall",
        bad,
        low=low,
        high=high,
        expected=f"a star rating from {low:g} to {high:g}",
    )
    require_rows(frame, path, "review")
    interactions = canonical_interactions(
        frame.select(
            pl.col("reviewerID").alias("user_id"),
            pl.col("asin").alias("item_id"),
            pl.col("unixReviewTime").alias("timestamp"),
            pl.col("overall").alias("rating"),
            pl.lit("review").alias("behavior"),
            pl.col("line"),
        )
    )
    logger.info("%s: %d reviews read", path.name, interactions.height)
    return interactions, {"reviews_read": interactions.height}
