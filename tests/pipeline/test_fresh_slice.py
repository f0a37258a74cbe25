"""The held-back slice: exactly the newest arrival's samples, histories from everything earlier."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from din_model.data.adapters import ingest
from din_model.data.canonical.merge import merge_canonical
from din_model.data.sources.arrivals import list_arrivals, read_arrival
from din_model.data.sources.timeline_cut import cut_timeline
from din_model.pipeline.prepare import raw_samples

MAX_LEN = 20


def _parts(dataset: str, source: Path, target: Path, every: str, start: str):
    cut_timeline(dataset, source, target, every=every, start=start)
    parts = [read_arrival(dataset, target, a, ingest=ingest) for a in list_arrivals(target)]
    return merge_canonical(parts[:-1]), parts[-1]


def test_movielens_slice_is_the_newest_week(movielens_100k: Path, tmp_path: Path) -> None:
    from din_model.pipeline.fresh_slice import fresh_slice_rows

    history, newest = _parts("movielens", movielens_100k, tmp_path / "cut", "1w", "1998-04-01")
    rows = fresh_slice_rows(history, newest, seed=3, max_len=MAX_LEN)
    merged = merge_canonical([history, newest])
    assert rows.columns == raw_samples(merged, seed=3, max_len=MAX_LEN).columns

    # a rating of the newest week is a sample unless it is its user's very first rating
    events = merged.interactions.sort("timestamp", "line").with_columns(
        pl.int_range(pl.len()).over("user_id").alias("earlier"),
        (pl.col("line") > history.interactions["line"].max()).alias("new"),
    )
    expected = events.filter(pl.col("new") & (pl.col("earlier") >= 1))
    assert rows.height == expected.height > 0
    key = ["user_id", "item_id", "timestamp"]
    joined = rows.join(expected, on=key, how="inner", suffix="_event")
    assert joined.height == rows.height  # every row is one new event, each once
    assert joined["label"].to_list() == (joined["rating"] >= 4).cast(pl.Int8).to_list()
    # histories hold every earlier rating of the user (the last MAX_LEN), older arrivals too
    lengths = joined.select(pl.col("history_item_id").list.len(), pl.col("earlier"))
    assert lengths["history_item_id"].to_list() == lengths["earlier"].clip(0, MAX_LEN).to_list()


def test_amazon_slice_pairs_each_new_review_with_a_negative(
    amazon_magazine: Path, tmp_path: Path
) -> None:
    from din_model.pipeline.fresh_slice import fresh_slice_rows

    history, newest = _parts("amazon", amazon_magazine, tmp_path / "cut", "1m", "2018-01-01")
    rows = fresh_slice_rows(history, newest, seed=5, max_len=MAX_LEN)
    merged = merge_canonical([history, newest])
    # the official protocol: users with at least 3 reviews, every review but the first
    counts = merged.interactions.group_by("user_id").len()
    events = (
        merged.interactions.join(counts, on="user_id")
        .sort("timestamp", "line")
        .with_columns(pl.int_range(pl.len()).over("user_id").alias("earlier"))
    )
    expected = events.filter(
        (pl.col("line") > history.interactions["line"].max())
        & (pl.col("earlier") >= 1)
        & (pl.col("len") >= 3)
    )
    positives = rows.filter(pl.col("label") == 1)
    assert positives.height == expected.height > 0
    assert rows.filter(pl.col("label") == 0).height == positives.height
    key = ["user_id", "item_id", "timestamp"]
    assert positives.join(expected, on=key, how="inner").height == positives.height
