"""Arriving sources: listing and its errors, per-arrival reads, merging, the window, the family."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from din_model.data.adapters import ingest
from din_model.data.canonical.merge import keep_window, merge_canonical
from din_model.data.canonical.schema import CanonicalData
from din_model.data.sources.arrivals import (
    ARRIVALS_DIR,
    arrivals_fingerprint,
    is_arriving_source,
    list_arrivals,
    parse_window,
    read_arrival,
    static_files,
)
from din_model.data.sources.family import data_family
from din_model.data.sources.timeline_cut import cut_timeline
from din_model.errors import ConfigError, DataError

EVENT = ["user_id", "item_id", "timestamp", "rating"]
WEEK = 7 * 86_400


@pytest.fixture(scope="module")
def weekly(movielens_100k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ml-100k cut by week from 1998-03-01 (an initial arrival + 8 weeks)."""
    target = tmp_path_factory.mktemp("cut") / "ml-100k"
    cut_timeline("movielens", movielens_100k, target, every="1w", start="1998-03-01")
    return target


@pytest.fixture(scope="module")
def plain(movielens_100k: Path) -> CanonicalData:
    return ingest("movielens", movielens_100k)


def _events(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(EVENT).sort(EVENT)


def test_listing_sorted_with_static_files_apart(weekly: Path) -> None:
    assert is_arriving_source(weekly)
    arrivals = list_arrivals(weekly)
    labels = [arrival.label for arrival in arrivals]
    # 1997-09-20 (the initial arrival) + 8 weeks from 1998-03-01 to the last rating (1998-04-22)
    assert labels == sorted(labels) and len(labels) == 9
    assert [path.name for path in static_files(weekly)] == ["u.genre", "u.item", "u.user"]
    assert all(arrival.files == (arrival.folder / "u.data",) for arrival in arrivals)
    assert len({arrival.fingerprint for arrival in arrivals}) == len(arrivals)
    assert arrivals_fingerprint(arrivals) != arrivals_fingerprint(arrivals[:-1])


def test_listing_errors_name_the_entry(weekly: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(weekly, source)
    (source / ARRIVALS_DIR / ".2099-01-01.tmp-1").mkdir()  # a publish in progress: skipped
    assert len(list_arrivals(source)) == 9

    stray = source / ARRIVALS_DIR / "u.data"
    stray.write_text("1\t2\t3\t890000000\n")
    with pytest.raises(DataError, match="a plain file") as caught:
        list_arrivals(source)
    assert caught.value.path == stray
    stray.unlink()

    empty = source / ARRIVALS_DIR / "1999-01-01"
    empty.mkdir()
    with pytest.raises(DataError, match="no files") as caught:
        list_arrivals(source)
    assert caught.value.path == empty

    with pytest.raises(DataError, match="no such folder"):
        list_arrivals(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8w", 8 * WEEK), ("30d", 30 * 86_400), ("12h", 43_200), (None, None), ("", None)],
)
def test_parse_window(text: str | None, seconds: int | None) -> None:
    assert parse_window(text) == seconds


@pytest.mark.parametrize("text", ["8", "0w", "-3d", "2 months", "1.5w"])
def test_parse_window_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^window: expected .* got "):
        parse_window(text)


def test_each_arrival_reads_as_the_same_rows_of_the_plain_ingest(
    weekly: Path, plain: CanonicalData
) -> None:
    arrivals = list_arrivals(weekly)
    parts = [read_arrival("movielens", weekly, a, ingest=ingest) for a in arrivals]
    week = arrivals[3]
    start = int(pl.Series([week.label]).str.to_date().dt.epoch("s")[0])
    expected = plain.interactions.filter(pl.col("timestamp").is_between(start, start + WEEK - 1))
    assert _events(parts[3].interactions).equals(_events(expected))
    items = plain.items.filter(pl.col("item_id").is_in(expected["item_id"].implode()))
    assert parts[3].items.sort("item_id").equals(items.sort("item_id"))
    assert parts[3].source_files[0] == week.folder / "u.data"  # the original, not a link

    merged = merge_canonical(parts)
    assert _events(merged.interactions).equals(_events(plain.interactions))
    lines = merged.interactions["line"]
    assert lines.is_unique().all() and lines.equals(lines.sort())
    assert merged.items.sort("item_id").equals(plain.items.sort("item_id"))
    assert merged.users.sort("user_id").equals(plain.users.sort("user_id"))
    assert merged.report["interactions"] == plain.interactions.height
    assert len(merged.source_files) == len(set(merged.source_files)) == len(arrivals) + 3

    seconds = parse_window("2w")
    windowed = keep_window(merged, seconds)
    newest = int(plain.interactions["timestamp"].max())
    recent = plain.interactions.filter(pl.col("timestamp") >= newest - seconds)
    assert _events(windowed.interactions).equals(_events(recent))
    assert set(windowed.items["item_id"]) == set(recent["item_id"])
    assert windowed.report["window_dropped"] == plain.interactions.height - recent.height
    assert keep_window(merged, None) is merged


def test_a_bad_line_is_reported_in_the_arrival_file(weekly: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(weekly, source)
    arrival = list_arrivals(source)[2]
    ratings = arrival.folder / "u.data"
    lines = ratings.read_text().splitlines(keepends=True)
    lines[4] = lines[4].replace("\t", "\tx", 1)
    ratings.write_text("".join(lines))
    arrival = list_arrivals(source)[2]
    with pytest.raises(DataError) as caught:
        read_arrival("movielens", source, arrival, ingest=ingest)
    assert caught.value.path == ratings.resolve()
    assert caught.value.line == 5
    assert str(ratings.resolve()) in str(caught.value)


def _part(rows: list[tuple[str, str, int]], arrival: str) -> CanonicalData:
    interactions = pl.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "timestamp": [r[2] for r in rows],
            "rating": [5.0] * len(rows),
            "behavior": ["review"] * len(rows),
            "label": pl.Series([None] * len(rows), dtype=pl.Int8),
            "line": list(range(len(rows))),
        }
    )
    items = interactions.select(pl.col("item_id").unique(maintain_order=True)).with_columns(
        pl.lit("unknown").alias("category")
    )
    users = interactions.select(pl.col("user_id").unique(maintain_order=True))
    report = {"duplicates_removed": 0, "arrival": arrival}
    return CanonicalData("amazon", "amazon-2018", interactions, items, users, report=report)


def test_merge_keeps_the_earliest_review_of_a_pair_and_refuses_mixed_layouts() -> None:
    older = _part([("u1", "a", 100), ("u2", "b", 150)], "2014-01")
    newer = _part([("u1", "a", 200), ("u1", "c", 150)], "2014-02")
    merged = merge_canonical([older, newer])
    assert merged.interactions.select("user_id", "item_id", "timestamp").rows() == [
        ("u1", "a", 100),
        ("u2", "b", 150),
        ("u1", "c", 150),
    ]
    assert merged.interactions["line"].to_list() == [0, 1, 3]
    assert merged.report["duplicates_removed"] == 1
    assert merged.report["parts"] == ["2014-01", "2014-02"]

    other = _part([("u3", "d", 300)], "x")
    other.layout = "amazon-2014"
    with pytest.raises(DataError, match="same dataset and layout"):
        merge_canonical([older, other])
    with pytest.raises(ConfigError):
        merge_canonical([])


def test_data_family(amazon_magazine: Path, amazon_musical: Path) -> None:
    magazine = [amazon_magazine / "Magazine_Subscriptions_5.json.gz"]
    assert (
        data_family("amazon", "amazon-2018", magazine, False)
        == "amazon/amazon-2018/Magazine_Subscriptions"
    )
    musical = [amazon_musical / "reviews_Musical_Instruments_5.json.gz"]
    assert (
        data_family("amazon", "amazon-2014", musical, False)
        == "amazon/amazon-2014/Musical_Instruments"
    )
    assert data_family("amazon", "amazon-2014", musical, True) == "amazon/amazon-2014/synthetic"
    assert data_family("movielens", "ml-100k", [], False) == "movielens/ml-100k/ml-100k"
