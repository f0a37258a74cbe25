"""Amazon adapter on the real 2018 / 2014 files and on small 2014-format fixtures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from _raw_files import meta_2014, review, write_lines

from din_model.data.adapters import detect_layout, ingest
from din_model.data.canonical.schema import (
    INTERACTION_COLUMNS,
    ITEM_COLUMNS,
    UNKNOWN_CATEGORY,
    missing_columns,
)
from din_model.data.canonical.store import load_canonical, save_canonical
from din_model.errors import DataError

T0 = 1_400_000_000  # 2014-05-13: fixtures' times lie in the plausible window


@pytest.fixture(scope="module")
def magazine(amazon_magazine: Path):
    return ingest("amazon", amazon_magazine)


def _raw_json(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_magazine_2018_figures(magazine, amazon_magazine: Path) -> None:
    assert magazine.layout == "amazon-2018"
    report = magazine.report
    assert report["reviews_read"] == 2_375
    # 73 repeated (user, asin) reviews: 47 exact copies, then 26 later reviews of the pair
    assert report["duplicates_dropped"] == {"interactions": 47}
    assert report["duplicates_removed"] == 26
    assert magazine.interactions.height == 2_302
    assert magazine.users.height == 348
    assert magazine.items.height == 157
    assert report["items_unknown_category"] == 12
    assert report["items_unknown_category_reasons"] == {
        "no_metadata": 6,
        "empty_category": 6,
        "labelled_unknown": 0,
    }
    assert report["metadata_missing"] is False
    assert magazine.synthetic is False
    assert [p.name for p in magazine.source_files] == [
        "Magazine_Subscriptions_5.json.gz",
        "meta_Magazine_Subscriptions.json.gz",
    ]
    assert missing_columns(magazine.interactions, INTERACTION_COLUMNS) == []
    assert missing_columns(magazine.items, ITEM_COLUMNS) == []
    assert magazine.items["category"].null_count() == 0
    assert magazine.items["item_id"].is_unique().all()
    assert set(magazine.interactions["behavior"]) == {"review"}
    assert magazine.interactions["line"].is_sorted()


def test_magazine_keeps_the_earliest_of_duplicate_reviews(magazine, amazon_magazine) -> None:
    raw = pl.DataFrame(
        [
            {"user_id": r["reviewerID"], "item_id": r["asin"], "timestamp": r["unixReviewTime"]}
            for r in _raw_json(amazon_magazine / "Magazine_Subscriptions_5.json.gz")
        ]
    ).with_row_index("line")
    earliest = raw.group_by("user_id", "item_id").agg(
        pl.col("line").sort_by("timestamp", "line").first()
    )
    assert sorted(magazine.interactions["line"].to_list()) == sorted(earliest["line"].to_list())


def test_magazine_category_is_last_entry_of_first_metadata_record(magazine, amazon_magazine):
    first_record: dict[str, list[str]] = {}
    for record in _raw_json(amazon_magazine / "meta_Magazine_Subscriptions.json.gz"):
        first_record.setdefault(record["asin"], record.get("category", []))
    for item_id, category in magazine.items.iter_rows():
        listed = first_record.get(item_id)
        assert category == (listed[-1] if listed else UNKNOWN_CATEGORY)


def test_musical_instruments_2014_without_metadata(amazon_musical: Path) -> None:
    data = ingest("amazon", amazon_musical)
    assert data.layout == "amazon-2014"
    assert data.interactions.height == 10_261
    assert data.users.height == 1_429
    assert data.items.height == 900
    assert set(data.items["category"]) == {UNKNOWN_CATEGORY}
    assert data.report["metadata_missing"] is True
    assert data.report["items_unknown_category_reasons"]["no_metadata"] == 900


def test_electronics_head_file_as_directory_or_file(shared_data: Path) -> None:
    folder = shared_data / "amazon" / "2014-electronics-head"
    by_dir = ingest("amazon", folder)
    by_file = ingest("amazon", folder / "reviews_Electronics_5.head.json.gz")
    for data in (by_dir, by_file):
        assert data.layout == "amazon-2014"
        assert data.report["reviews_read"] == 290
        assert data.users.height == 289
        assert data.items.height == 6
    assert by_dir.interactions.equals(by_file.interactions)


def _fixture_2014(folder: Path) -> Path:
    write_lines(
        folder / "reviews_Books_5.json.gz",
        [
            review("u1", "A", T0 + 300),
            review("u1", "B", T0 + 100),
            review("u2", "A", T0 + 100),
            review("u1", "A", T0 + 200),  # duplicate: earlier than line 0, wins
            review("u2", "C", T0 + 100),
            review("u3", "D", T0 + 100),
        ],
    )
    write_lines(
        folder / "meta_Books.json.gz",
        [
            meta_2014("Z", [["Books", "Unrelated"]]),
            meta_2014("A", [["Books", "Fiction", "Crime"], ["Books", "Gifts"]]),
            "{'asin': 'UNREVIEWED', 'categories': [['broken but never parsed'",
            meta_2014("B", [[]], related={"also_bought": ["A", "C"]}),
            meta_2014("C", [["Kids' Books"]], description='It\'s "great"'),
        ],
    )
    return folder


def test_2014_metadata_literals_categories_and_reasons(tmp_path: Path) -> None:
    data = ingest("amazon", _fixture_2014(tmp_path / "books"))
    assert data.layout == "amazon-2014"
    assert data.report["duplicates_removed"] == 1
    kept = data.interactions.select("user_id", "item_id", "timestamp", "line").rows()
    assert kept == [("u1", "B", T0 + 100, 1), ("u2", "A", T0 + 100, 2), ("u1", "A", T0 + 200, 3),
                    ("u2", "C", T0 + 100, 4), ("u3", "D", T0 + 100, 5)]  # fmt: skip
    assert dict(data.items.iter_rows()) == {
        "A": "Crime",
        "B": UNKNOWN_CATEGORY,
        "C": "Kids' Books",
        "D": UNKNOWN_CATEGORY,
    }
    assert data.report["items_unknown_category_reasons"] == {
        "no_metadata": 1,
        "empty_category": 1,
        "labelled_unknown": 0,
    }
    assert data.report["metadata_lines_parsed"] == 3  # Z and the broken unreviewed line skipped


def test_2018_duplicate_metadata_keeps_first_and_category_is_last(tmp_path: Path) -> None:
    folder = tmp_path / "toys"
    write_lines(folder / "Toys_5.json", [review("u1", "A", T0 + 1), review("u1", "B", T0 + 2)])
    write_lines(
        folder / "meta_Toys.json",
        [
            json.dumps({"title": "x", "category": ["Toys", "Cars"], "asin": "A"}),
            json.dumps({"title": "x", "category": ["Toys", "Dolls"], "asin": "A"}),
            json.dumps({"asin": "B", "category": []}),
        ],
    )
    data = ingest("amazon", folder)
    assert data.layout == "amazon-2018"
    assert dict(data.items.iter_rows()) == {"A": "Cars", "B": UNKNOWN_CATEGORY}
    assert data.report["metadata_duplicate_items"] == 1


def test_several_review_files_must_be_chosen_explicitly(tmp_path: Path) -> None:
    folder = _fixture_2014(tmp_path / "books")
    write_lines(folder / "reviews_Books_5.head.json.gz", [review("u1", "A", T0 + 1)])
    expected = (
        r"exactly one Amazon reviews file, found 2: "
        r"reviews_Books_5\.head\.json\.gz, reviews_Books_5\.json\.gz.*--source"
    )
    with pytest.raises(DataError, match=expected):
        detect_layout("amazon", folder)
    chosen = ingest("amazon", folder / "reviews_Books_5.head.json.gz")
    assert chosen.interactions.height == 1
    assert chosen.items["category"].to_list() == ["Crime"]  # same meta_Books file


def test_synthetic_marker_flags_the_data(tmp_path: Path) -> None:
    folder = _fixture_2014(tmp_path / "synth")
    marker = {"generator": "test", "seed": 3}
    (folder / "SYNTHETIC.json").write_text(json.dumps(marker))
    data = ingest("amazon", folder)
    assert data.synthetic is True
    assert data.report["synthetic"] == marker
    assert folder / "SYNTHETIC.json" in data.source_files


def test_canonical_tables_round_trip(tmp_path: Path) -> None:
    data = ingest("amazon", _fixture_2014(tmp_path / "books"))
    save_canonical(data, tmp_path / "canonical")
    loaded = load_canonical(tmp_path / "canonical")
    assert loaded.interactions.equals(data.interactions)
    assert loaded.items.equals(data.items)
    assert loaded.users.equals(data.users)
    assert loaded.behaviors is None
    assert (loaded.dataset, loaded.layout, loaded.synthetic) == ("amazon", "amazon-2014", False)
    assert loaded.report == json.loads(json.dumps(data.report))
    assert loaded.source_files == data.source_files
    assert sorted(p.name for p in (tmp_path / "canonical").iterdir()) == [
        "canonical.json",
        "interactions.parquet",
        "items.parquet",
        "users.parquet",
    ]
