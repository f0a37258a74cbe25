"""Timeline cuts of real data: every line in exactly one arrival, labels in time order, refusals."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from din_model.data.sources.arrivals import list_arrivals, static_files
from din_model.data.sources.timeline_cut import (
    TIMELINE_FILE,
    cut_timeline,
    pending_arrivals,
    publish_next_arrival,
)
from din_model.errors import ConfigError, DataError, OutputRefused
from din_model.io.fingerprint import fingerprint_files


def _lines(path: Path) -> list[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return [line for line in handle if line.strip()]


def _day(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


def test_movielens_by_week_from_a_start_date(movielens_100k: Path, tmp_path: Path) -> None:
    target = tmp_path / "cut"
    folders = cut_timeline("movielens", movielens_100k, target, every="1w", start="1998-03-01")
    labels = [folder.name for folder in folders]
    assert labels == sorted(labels) == [a.label for a in list_arrivals(target)]

    original = _lines(movielens_100k / "u.data")
    cut = [line for folder in folders for line in _lines(folder / "u.data")]
    assert Counter(cut) == Counter(original)  # every line once, byte for byte

    start = date(1998, 3, 1)
    first_day = min(_day(int(line.split(b"\t")[3])) for line in original)
    assert labels[0] == first_day.isoformat()  # the initial arrival: everything before start
    for folder in folders:
        days = {_day(int(line.split(b"\t")[3])) for line in _lines(folder / "u.data")}
        if folder.name == labels[0]:
            assert max(days) < start
        else:
            week = date.fromisoformat(folder.name)
            assert (week - start).days % 7 == 0
            assert week <= min(days) and max(days) < week + timedelta(days=7)
    for static in static_files(target):
        assert static.read_bytes() == (movielens_100k / static.name).read_bytes()
    assert (target / TIMELINE_FILE).is_file()

    limited = cut_timeline(
        "movielens", movielens_100k, tmp_path / "short", every="1w", start="1998-03-01", limit=3
    )
    assert [folder.name for folder in limited] == labels[:4]


def test_amazon_2014_by_month(amazon_musical: Path, tmp_path: Path) -> None:
    reviews = amazon_musical / "reviews_Musical_Instruments_5.json.gz"
    target = tmp_path / "cut"
    folders = cut_timeline("amazon", amazon_musical, target, every="1m", start="2014-01-01")
    labels = [folder.name for folder in folders]
    assert labels == sorted(labels)
    cut = []
    for folder in folders:
        lines = _lines(folder / reviews.name)
        cut += lines
        months = {_day(json.loads(line)["unixReviewTime"]).strftime("%Y-%m") for line in lines}
        if folder.name >= "2014-01":
            assert months == {folder.name}
        else:
            assert max(months) < "2014-01" and folder.name == min(months)
    assert Counter(cut) == Counter(_lines(reviews))

    # the same cut twice gives the same bytes (gzip without a time stamp)
    again = cut_timeline("amazon", amazon_musical, target, every="1m", start="2014-01-01")
    assert again == folders
    before = fingerprint_files([f / reviews.name for f in folders], root=target)
    assert fingerprint_files([f / reviews.name for f in again], root=target) == before


def test_refusals_and_bad_input(movielens_100k: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    with pytest.raises(OutputRefused, match="not empty"):
        cut_timeline("movielens", movielens_100k, foreign, every="1w")
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]

    with pytest.raises(ConfigError, match=r"^every: expected .* got '1y'"):
        cut_timeline("movielens", movielens_100k, tmp_path / "a", every="1y")
    with pytest.raises(ConfigError, match=r"^start: expected an ISO date"):
        cut_timeline("movielens", movielens_100k, tmp_path / "a", every="1w", start="March")
    with pytest.raises(ConfigError, match="first day of a month"):
        cut_timeline("movielens", movielens_100k, tmp_path / "a", every="1m", start="1998-03-02")

    broken = tmp_path / "broken"
    broken.mkdir()
    lines = (movielens_100k / "u.data").read_bytes().splitlines(keepends=True)[:10]
    lines[6] = b"1\t2\t3\tyesterday\n"
    (broken / "u.data").write_bytes(b"".join(lines))
    with pytest.raises(DataError) as caught:
        cut_timeline("movielens", broken, tmp_path / "a", every="1w")
    assert caught.value.path == broken / "u.data" and caught.value.line == 7
    assert not (tmp_path / "a").exists()


def test_publishing_reveals_one_arrival_at_a_time(movielens_100k: Path, tmp_path: Path) -> None:
    staging = tmp_path / "staging"
    cut_timeline("movielens", movielens_100k, staging, every="1w", start="1998-04-01", limit=2)
    landing = tmp_path / "landing"
    labels = [a.label for a in list_arrivals(staging)]
    published = []
    while (arrival := publish_next_arrival(staging, landing)) is not None:
        published.append(arrival.label)
        assert [a.label for a in list_arrivals(landing)] == published
        assert arrival.fingerprint == next(
            a.fingerprint for a in list_arrivals(staging) if a.label == arrival.label
        )
    assert published == labels and len(labels) == 3
    assert pending_arrivals(staging, landing) == []
    assert [p.name for p in static_files(landing)] == ["u.genre", "u.item", "u.user"]

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x").write_text("x")
    with pytest.raises(OutputRefused, match="not empty"):
        publish_next_arrival(staging, foreign)
