"""Bad input through ``ingest``: every failure names file, line or column, and what was expected.

Each case is checked twice: under ``on_bad_lines="error"`` the message locates
the problem; under ``"skip"`` the line lands in the rejects file and is
counted. Empty files and unrecognised layouts fail under both policies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _raw_files import copy_with_edits, meta_2014, review, write_lines

from din_model.data.adapters import ingest
from din_model.errors import ConfigError, DataError

REVIEWS_2018 = "Magazine_Subscriptions_5.json.gz"
META_2018 = "meta_Magazine_Subscriptions.json.gz"


def _magazine_with(tmp_path: Path, amazon_magazine: Path, edits: dict[int, str]) -> Path:
    """A copy of the real 2018 Magazine files with some review lines (0-based) replaced."""
    folder = tmp_path / "magazine"

    def edit(lines: list[str]) -> list[str]:
        for index, text in edits.items():
            lines[index] = text
        return lines

    copy_with_edits(amazon_magazine / REVIEWS_2018, folder / REVIEWS_2018, edit)
    (folder / META_2018).write_bytes((amazon_magazine / META_2018).read_bytes())
    return folder


def _rejects(folder: Path, name: str) -> list[dict]:
    path = folder / f"{name}.rejects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _skip(dataset: str, source: Path, rejects: Path):
    return ingest(dataset, source, on_bad_lines="skip", rejects_dir=rejects)


CASES = {
    "broken JSON": (
        '{"reviewerID": "A1", "asin": "B00005N7P0", "unixReviewTime": 13',
        r":100: expected one JSON object per line, got invalid JSON \(Expecting",
    ),
    "missing field": (
        review("", "B00005N7P0", 1393372800).replace('"reviewerID": "", ', ""),
        r":100: column 'reviewerID': expected a non-empty value, got nothing",
    ),
    "non-numeric timestamp": (
        review("A1", "B00005N7P0", 0).replace('"unixReviewTime": 0', '"unixReviewTime": "soon"'),
        r":100: column 'unixReviewTime': expected an integer unix timestamp, got 'soon'",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_review_line_is_located(tmp_path: Path, amazon_magazine: Path, case: str) -> None:
    line, message = CASES[case]
    folder = _magazine_with(tmp_path, amazon_magazine, {99: line})
    with pytest.raises(DataError, match=re.escape(str(folder / REVIEWS_2018)) + message):
        ingest("amazon", folder)
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert data.report["reviews_read"] == 2_374
    assert data.report["rejected_lines"] == 1
    assert data.report["rejected_lines_by_file"][REVIEWS_2018] == 1
    assert data.report["rejects_files"] == [
        str(tmp_path / "rejects" / f"{REVIEWS_2018}.rejects.jsonl")
    ]
    (record,) = _rejects(tmp_path / "rejects", REVIEWS_2018)
    assert record["line"] == 100
    assert record["text"] == line
    assert record["reason"].startswith("expected ")


def test_several_bad_lines_are_all_rejected_and_counted(tmp_path: Path, amazon_magazine) -> None:
    edits = {index: CASES[case][0] for index, case in zip((0, 999, 2374), CASES, strict=True)}
    folder = _magazine_with(tmp_path, amazon_magazine, edits)
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert data.report["rejected_lines"] == 3
    assert [r["line"] for r in _rejects(tmp_path / "rejects", REVIEWS_2018)] == [1, 1000, 2375]
    assert data.report["reviews_read"] == 2_372


def _books(folder: Path, meta_lines: list[str]) -> Path:
    write_lines(
        folder / "reviews_Books_5.json.gz",
        [
            review("u1", "A", 1_400_000_001),
            review("u1", "B", 1_400_000_002),
            review("u2", "A", 1_400_000_003),
        ],
    )
    write_lines(folder / "meta_Books.json.gz", meta_lines)
    return folder


def test_broken_metadata_literal_is_located(tmp_path: Path) -> None:
    folder = _books(
        tmp_path / "books",
        [meta_2014("A", [["Books", "Crime"]]), "{'asin': 'B', 'categories': [['Books', 'Hist"],
    )
    with pytest.raises(
        DataError, match=r"meta_Books\.json\.gz:2: expected one Python dict literal per line, got "
        r"invalid literal \(SyntaxError"
    ):  # fmt: skip
        ingest("amazon", folder)
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert dict(data.items.iter_rows()) == {"A": "Crime", "B": "unknown"}
    assert data.report["rejected_lines_by_file"] == {
        "reviews_Books_5.json.gz": 0,
        "meta_Books.json.gz": 1,
    }


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("5\t7\t3", r"u\.data:3: expected 4 tab-separated fields \(user_id, item_id, rating, "
                    r"timestamp\), got 3 field\(s\): '5\t7\t3'"),
        ("5\t7\t3\tnoon", r"u\.data:3: column 'timestamp': expected an integer unix timestamp, "
                          r"got 'noon'"),
        ("5\t\t3\t881250949", r"u\.data:3: column 'item_id': expected a non-empty value"),
        ("5\tseven\t3\t881250949", r"u\.data:3: column 'item_id': expected an integer id, "
                                   r"got 'seven'"),
    ],
)  # fmt: skip
def test_bad_movielens_line_is_located(tmp_path: Path, line: str, message: str) -> None:
    folder = tmp_path / "ml-100k"
    write_lines(folder / "u.data", ["196\t242\t3\t881250949", "186\t302\t3\t891717742", line])
    with pytest.raises(DataError, match=message):
        ingest("movielens", folder)
    data = _skip("movielens", folder, tmp_path / "rejects")
    assert data.interactions.height == 2
    assert _rejects(tmp_path / "rejects", "u.data")[0]["line"] == 3


def test_bad_taobao_behavior_is_located(tmp_path: Path) -> None:
    write_lines(tmp_path / "UserBehavior.csv", ["1,2,3,pv,1511544070", "1,2,3,click,1511544071"])
    with pytest.raises(
        DataError,
        match=r"UserBehavior\.csv:2: column 'behavior': expected one of buy/cart/fav/pv, "
        r"got 'click'",
    ):
        ingest("taobao", tmp_path)


@pytest.mark.parametrize(
    ("dataset", "name", "lines", "message"),
    [
        ("amazon", "reviews_Books_5.json.gz", [], r"reviews_Books_5\.json\.gz: expected one JSON "
                                                 r"object per line, got an empty file"),
        ("amazon", "Books_5.json", ["", "  "], r"Books_5\.json: expected one JSON object per line, "
                                               r"got an empty file"),
        ("movielens", "u.data", [], r"u\.data: expected at least one data line, got an empty file"),
        ("movielens", "ratings.csv", ["userId,movieId,rating,timestamp"],
         r"ratings\.csv: expected at least one data line after the header, got an empty file"),
        ("taobao", "UserBehavior.csv", [], r"UserBehavior\.csv: expected at least one data line"),
    ],
)  # fmt: skip
def test_empty_file_fails_under_both_policies(
    tmp_path: Path, dataset: str, name: str, lines: list[str], message: str
) -> None:
    folder = tmp_path / "source"
    write_lines(folder / name, lines)
    with pytest.raises(DataError, match=message):
        ingest(dataset, folder)
    with pytest.raises(DataError, match=message):
        _skip(dataset, folder, tmp_path / "rejects")


def test_all_lines_bad_under_skip_is_still_an_error(tmp_path: Path) -> None:
    write_lines(tmp_path / "UserBehavior.csv", ["1,2,3,pv,later", "1,2,3,pv"])
    with pytest.raises(DataError, match=r"expected at least one valid event, got none left"):
        _skip("taobao", tmp_path, tmp_path / "rejects")
    # the rejected lines are still written, to show the user what was wrong
    assert len(_rejects(tmp_path / "rejects", "UserBehavior.csv")) == 2


@pytest.mark.parametrize(
    ("dataset", "expected_names"),
    [
        (
            "amazon",
            ["amazon-2014: reviews_<Category>_5.json[.gz]", "amazon-2018: <Category>_5.json"],
        ),
        ("movielens", ["ml-100k: u.data", "ml-1m: ratings.dat", "ml-20m: ratings.csv"]),
        ("taobao", ["taobao-user-behavior: UserBehavior.csv", "taobao-display-ad: raw_sample.csv"]),
    ],
)
def test_unrecognised_layout_names_the_directory_and_expected_files(
    tmp_path: Path, dataset: str, expected_names: list[str]
) -> None:
    folder = tmp_path / "downloads"
    write_lines(folder / "notes.txt", ["hello"])
    write_lines(folder / "data.csv", ["1,2"])
    for policy in ("error", "skip"):
        with pytest.raises(DataError) as caught:
            ingest(dataset, folder, on_bad_lines=policy, rejects_dir=tmp_path / "rejects")
        message = str(caught.value)
        assert message.startswith(f"{folder}: expected the files of a known {dataset} layout")
        for name in expected_names:
            assert name in message
        assert message.endswith("got data.csv, notes.txt")


def test_unknown_dataset_and_missing_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown dataset 'criteo': choose one of amazon, "):
        ingest("criteo", tmp_path)
    with pytest.raises(DataError, match=r"nowhere: expected an existing directory"):
        ingest("movielens", tmp_path / "nowhere")
    with pytest.raises(
        DataError, match=r"expected a directory holding the MovieLens files, got a file"
    ):
        ingest("movielens", write_lines(tmp_path / "u.data", ["1\t2\t3\t4"]))
