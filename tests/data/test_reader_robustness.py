"""Adversarial input found by review: each case ends in a located DataError, or in the rejects.

Deep nesting, ids that are JSON lists next to a truncated line, values out of
their plausible range, exact duplicate interactions and dangling symbolic
links: under ``on_bad_lines="error"`` each stops with the file, the 1-based
line and what was expected; under ``"skip"`` the line is quarantined and
counted like any malformed line.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from _raw_files import meta_2014, review, write_lines

from din_model.data.adapters import ingest
from din_model.data.readers import read_json_lines
from din_model.data.readers.bad_lines import BadLinePolicy
from din_model.data.specs.feature_map import FIRST_KNOWN_ID
from din_model.errors import DataError, ValidationFailed
from din_model.pipeline.prepare import build_samples, prepare_dataset
from din_model.validation.suites import expectations_dir

DAY = 1_400_000_000  # 2014-05-13, a plausible review time
DEEP = 200_000


def _rejects(folder: Path, name: str) -> list[dict]:
    path = folder / f"{name}.rejects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _skip(dataset: str, source: Path, rejects: Path):
    return ingest(dataset, source, on_bad_lines="skip", rejects_dir=rejects)


def _reviews(folder: Path, name: str, extra: list[str]) -> Path:
    lines = [review("u1", "A", DAY), review("u1", "B", DAY + 1), review("u2", "A", DAY + 2)]
    return write_lines(folder / name, lines + extra)


# --- 1. deep nesting -------------------------------------------------------------------------

DEEP_ARRAY = "[" * DEEP + "]" * DEEP


@pytest.mark.parametrize(
    ("files", "bad_file"),
    [
        (
            {
                "Books_5.json": [],
                "meta_Books.json": [
                    json.dumps({"asin": "A", "category": ["Books"]}),
                    '{"asin": "B", "category": ' + DEEP_ARRAY + "}",
                ],
            },
            "meta_Books.json",
        ),
        (
            {
                "reviews_Books_5.json": [],
                "meta_Books.json": [
                    meta_2014("A", [["Books"]]),
                    "{'asin': 'B', 'categories': " + DEEP_ARRAY + "}",
                ],
            },
            "meta_Books.json",
        ),
        (
            {"Books_5.json": ['{"reviewerID": "u3", "asin": "B", "helpful": ' + DEEP_ARRAY + "}"]},
            "Books_5.json",
        ),
    ],
    ids=["meta-2018-json", "meta-2014-literal", "reviews-json"],
)
def test_deeply_nested_line_is_a_located_data_error(
    tmp_path: Path, files: dict[str, list[str]], bad_file: str
) -> None:
    folder = tmp_path / "books"
    for name, extra in files.items():
        if name.startswith("meta_"):
            write_lines(folder / name, extra)
        else:
            _reviews(folder, name, extra)
    line = 2 if bad_file.startswith("meta_") else 4
    with pytest.raises(DataError) as caught:
        ingest("amazon", folder)
    message = str(caught.value)
    assert message.startswith(f"{folder / bad_file}:{line}: ")
    assert "expected " in message and "nest" in message
    assert len(message) < 400  # one readable line, not the 400,000-character record
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert data.report["rejected_lines_by_file"][bad_file] == 1
    (record,) = _rejects(tmp_path / "rejects", bad_file)
    assert record["line"] == line


# --- 2. list-valued ids beside a truncated line ----------------------------------------------


def test_list_ids_and_a_truncated_line_are_rejected_not_a_polars_panic(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    _reviews(
        folder,
        "Books_5.json",
        [
            review("x", "A", DAY + 3).replace('"reviewerID": "x"', '"reviewerID": ["a", "b"]'),
            review("y", "B", DAY + 4).replace('"reviewerID": "y"', '"reviewerID": ["c"]'),
            '{"reviewerID": "u3", "asin": "A", "unixRev',
        ],
    )
    with pytest.raises(DataError, match=re.escape(str(folder / "Books_5.json")) + r":[4-6]: "):
        ingest("amazon", folder)
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert data.interactions.height == 3
    assert data.report["rejected_lines"] == 3
    records = _rejects(tmp_path / "rejects", "Books_5.json")
    assert [r["line"] for r in records] == [4, 5, 6]
    assert [r["column"] for r in records[:2]] == ["reviewerID", "reviewerID"]


# --- 3. values out of their plausible range --------------------------------------------------

ML_GOOD = ["196\t242\t3\t881250949", "186\t302\t3\t891717742", "22\t377\t1\t878887116"]


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        ("5\t7\t7\t881250949", "rating", "a rating from 0.5 to 5"),
        ("5\t7\t-1\t881250949", "rating", "a rating from 0.5 to 5"),
        ("5\t7\t0\t881250949", "rating", "a rating from 0.5 to 5"),
        ("5\t7\t3\t-881250949", "timestamp", "a unix timestamp in seconds from 1995-01-01"),
        ("5\t7\t3\t32503680000", "timestamp", "a unix timestamp in seconds from 1995-01-01"),
        ("5\t7\t3\t881250949000", "timestamp", "a unix timestamp in seconds from 1995-01-01"),
    ],
    ids=["rating-7", "rating-minus-1", "rating-0", "negative-ts", "year-3000", "milliseconds"],
)
def test_movielens_value_out_of_range_is_located_and_quarantined(
    tmp_path: Path, line: str, column: str, expected: str
) -> None:
    folder = tmp_path / "ml-100k"
    write_lines(folder / "u.data", [*ML_GOOD, line])
    message = re.escape(f"{folder / 'u.data'}:4: column '{column}': expected {expected}")
    with pytest.raises(DataError, match=message):
        ingest("movielens", folder)
    data = _skip("movielens", folder, tmp_path / "rejects")
    assert data.interactions.height == 3
    assert data.report["rejected_lines_by_file"]["u.data"] == 1
    (record,) = _rejects(tmp_path / "rejects", "u.data")
    assert (record["line"], record["column"], record["text"]) == (4, column, line)
    assert record["reason"].startswith(f"expected {expected}")


@pytest.mark.parametrize(
    ("line", "column", "expected"),
    [
        (review("u3", "B", DAY, overall=6), "overall", "a star rating from 1 to 5"),
        (review("u3", "B", DAY, overall=0), "overall", "a star rating from 1 to 5"),
        (review("u3", "B", -5), "unixReviewTime", "a unix timestamp in seconds from 1995-01-01"),
        (review("u3", "B", 32503680000), "unixReviewTime", "a unix timestamp in seconds"),
    ],
    ids=["overall-6", "overall-0", "negative-ts", "year-3000"],
)
def test_amazon_value_out_of_range_is_located_and_quarantined(
    tmp_path: Path, line: str, column: str, expected: str
) -> None:
    folder = tmp_path / "books"
    _reviews(folder, "Books_5.json", [line])
    message = re.escape(f"{folder / 'Books_5.json'}:4: column '{column}': expected {expected}")
    with pytest.raises(DataError, match=message):
        ingest("amazon", folder)
    data = _skip("amazon", folder, tmp_path / "rejects")
    assert data.interactions.height == 3
    assert [r["line"] for r in _rejects(tmp_path / "rejects", "Books_5.json")] == [4]


@pytest.mark.parametrize("timestamp", ["-1511544070", "0", "32503680000"])
def test_taobao_user_behavior_timestamp_out_of_range(tmp_path: Path, timestamp: str) -> None:
    rows = ["1,2,3,pv,1511544070", "1,4,3,buy,1511544071", f"2,2,3,pv,{timestamp}"]
    write_lines(tmp_path / "UserBehavior.csv", rows)
    with pytest.raises(
        DataError, match=r"UserBehavior\.csv:3: column 'timestamp': expected a unix"
    ):
        ingest("taobao", tmp_path)
    data = _skip("taobao", tmp_path, tmp_path / "rejects")
    assert data.interactions.height == 2
    assert data.report["rejected_lines"] == 1


def _display_ad(folder: Path, raw: list[str], log: list[str]) -> Path:
    write_lines(folder / "raw_sample.csv", ["user,time_stamp,adgroup_id,pid,nonclk,clk", *raw])
    write_lines(
        folder / "ad_feature.csv",
        ["adgroup_id,cate_id,campaign_id,customer,brand,price", "1,6406,83237,1,95471,170.0"],
    )
    write_lines(folder / "behavior_log.csv", ["user,time_stamp,btag,cate,brand", *log])
    return folder


@pytest.mark.parametrize(
    ("name", "raw", "log", "message"),
    [
        (
            "raw_sample.csv",
            ["7,1494137644,1,430548_1007,1,0", "8,4102444800,1,430548_1007,1,0"],
            ["7,1494137000,pv,6406,95471"],
            r"raw_sample\.csv:3: column 'time_stamp': expected a unix timestamp in seconds",
        ),
        (
            "raw_sample.csv",
            ["7,1494137644,1,430548_1007,1,0", "8,1494137645,1,430548_1007,0,2"],
            ["7,1494137000,pv,6406,95471"],
            r"raw_sample\.csv:3: column 'clk': expected one of 0/1, got '2'",
        ),
        (
            "behavior_log.csv",
            ["7,1494137644,1,430548_1007,1,0"],
            ["7,1494137000,pv,6406,95471", "7,-1494137001,cart,6406,NULL"],
            r"behavior_log\.csv:3: column 'time_stamp': expected a unix timestamp in seconds",
        ),
    ],
    ids=["impression-year-2100", "click-label-2", "behaviour-negative-ts"],
)
def test_taobao_display_ad_range_checks(
    tmp_path: Path, name: str, raw: list[str], log: list[str], message: str
) -> None:
    folder = _display_ad(tmp_path / "ad", raw, log)
    with pytest.raises(DataError, match=message):
        ingest("taobao", folder)
    data = _skip("taobao", folder, tmp_path / "rejects")
    assert data.report["rejected_lines_by_file"][name] == 1


# --- 4. exact duplicate interactions ---------------------------------------------------------


def _ml_100k_with_repeated_lines(source: Path, folder: Path, repeated: list[int]) -> list[str]:
    folder.mkdir(parents=True)
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copy(source / name, folder / name)
    lines = (source / "u.data").read_text().splitlines()
    write_lines(folder / "u.data", lines + [lines[i] for i in repeated])
    return lines


def test_exact_duplicate_ratings_are_dropped_and_counted(
    movielens_100k: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "ml-100k"
    _ml_100k_with_repeated_lines(movielens_100k, folder, [0, 1, 2])
    data = ingest("movielens", folder)
    assert data.interactions.height == 100_000
    assert data.interactions["line"].to_list() == list(range(100_000))  # first copies kept
    assert data.report["duplicates_dropped"] == {"interactions": 3}
    samples = build_samples(data, seed=42, max_len=100)
    assert samples.report["duplicates_dropped"] == {"interactions": 3}
    assert sum(len(frame) for frame in samples.splits.values()) == 99_057
    for frame in samples.splits.values():  # no known target sits in its own history
        known = frame.filter(pl.col("item_id") >= FIRST_KNOWN_ID)
        assert known.filter(pl.col("hist_item_id").list.contains(pl.col("item_id"))).is_empty()


def test_prepare_report_counts_duplicates_for_every_dataset(
    taobao_user_behavior: Path, tmp_path: Path
) -> None:
    rows = (taobao_user_behavior / "UserBehavior.head.csv").read_text().splitlines()[:3000]
    write_lines(tmp_path / "ub" / "UserBehavior.csv", rows + rows[:5])
    report = prepare_dataset("taobao", tmp_path / "ub", tmp_path / "out", max_len=20)
    assert report["duplicates_dropped"] == {"interactions": 5}
    assert report["interactions"] == 3000


def test_great_expectations_stay_the_second_gate(
    taobao_user_behavior: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values the readers accept still meet the suites: here a stricter suite, which fails."""
    rows = (taobao_user_behavior / "UserBehavior.head.csv").read_text().splitlines()[:3000]
    write_lines(tmp_path / "ub" / "UserBehavior.csv", rows)
    suites = tmp_path / "expectations"
    shutil.copytree(expectations_dir(), suites)
    suite = json.loads((suites / "canonical_interactions.json").read_text())
    for expectation in suite["expectations"]:
        if (
            expectation["kwargs"].get("column") == "timestamp"
            and "max_value" in expectation["kwargs"]
        ):
            expectation["kwargs"]["max_value"] = 1_500_000_000  # before the data's last day
    (suites / "canonical_interactions.json").write_text(json.dumps(suite))
    monkeypatch.setenv("DIN_EXPECTATIONS_DIR", str(suites))
    out = tmp_path / "out"
    with pytest.raises(ValidationFailed, match="column 'timestamp'"):
        prepare_dataset("taobao", tmp_path / "ub", out, max_len=20)
    assert not out.exists()


def test_exact_duplicates_differ_from_repeated_events(tmp_path: Path) -> None:
    """Same user, item and time but another behaviour or label is a different event: kept."""
    folder = _display_ad(
        tmp_path / "ad",
        [
            "7,1494137644,1,430548_1007,1,0",
            "7,1494137644,1,430548_1007,1,0",  # exact repeat: dropped
            "7,1494137644,1,430548_1007,0,1",  # same time, clicked: kept
            "7,1494137644,1,430539_1007,1,0",  # other position: kept
        ],
        ["7,1494137000,pv,6406,95471", "7,1494137000,pv,6406,95471", "7,1494137000,fav,6406,95471"],
    )
    data = ingest("taobao", folder)
    assert data.interactions["line"].to_list() == [1, 3, 4]
    assert data.behaviors.height == 2
    assert data.report["duplicates_dropped"] == {"interactions": 1, "behaviors": 1}


def test_amazon_exact_duplicates_are_counted_apart_from_repeat_reviews(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    _reviews(
        folder,
        "Books_5.json",
        [review("u1", "A", DAY), review("u1", "A", DAY + 9), review("u1", "A", DAY, overall=1)],
    )
    data = ingest("amazon", folder)
    assert data.report["reviews_read"] == 6
    assert data.report["duplicates_dropped"] == {"interactions": 1}  # line 4 repeats line 1
    assert data.report["duplicates_removed"] == 2  # later or other reviews of (u1, A)
    assert data.interactions["line"].to_list() == [0, 1, 2]


# --- 5. dangling symbolic links --------------------------------------------------------------


def test_dangling_metadata_link_is_an_error_not_missing_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "books"
    _reviews(folder, "Books_5.json", [])
    target = tmp_path / "elsewhere" / "meta_Books.json"
    (folder / "meta_Books.json").symlink_to(target)
    for policy in ("error", "skip"):
        with pytest.raises(DataError) as caught:
            ingest("amazon", folder, on_bad_lines=policy, rejects_dir=tmp_path / "rejects")
        message = str(caught.value)
        assert message.startswith(f"{folder / 'meta_Books.json'}: expected ")
        assert f"a broken symbolic link to {target}" in message


@pytest.mark.parametrize("name", ["u.item", "u.user", "u.genre"])
def test_dangling_optional_movielens_file_is_an_error(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "ml-100k"
    write_lines(folder / "u.data", ML_GOOD)
    (folder / name).symlink_to(tmp_path / "gone" / name)
    if name == "u.genre":
        write_lines(folder / "u.item", ["242|Kolya (1996)|24-Jan-1997||http://x" + "|0" * 19])
    with pytest.raises(DataError, match=re.escape(f"{folder / name}: expected ")) as caught:
        ingest("movielens", folder)
    assert "a broken symbolic link to" in str(caught.value)


@pytest.mark.parametrize(
    ("dataset", "name", "expected"),
    [
        ("amazon", "Books_5.json", "a readable reviews file"),
        ("movielens", "u.data", "a readable ratings file"),
        ("taobao", "UserBehavior.csv", "a readable events file"),
        ("taobao", "raw_sample.csv", "a readable impressions file"),
        ("movielens", "SYNTHETIC.json", "a readable file, or no file at all"),
    ],
)
def test_dangling_main_file_or_marker_is_named_with_its_target(
    tmp_path: Path, dataset: str, name: str, expected: str
) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    if name == "SYNTHETIC.json":
        write_lines(folder / "u.data", ML_GOOD)
    if name == "raw_sample.csv":
        write_lines(
            folder / "ad_feature.csv", ["adgroup_id,cate_id,campaign_id,customer,brand,price"]
        )
    target = tmp_path / "gone" / name
    (folder / name).symlink_to(target)
    message = f"{folder / name}: expected {expected}, got a broken symbolic link to {target}"
    with pytest.raises(DataError, match=re.escape(message)):
        ingest(dataset, folder)


# --- 2. no polars failure escapes the readers -------------------------------------------------


def test_rejecting_from_a_frame_of_several_chunks_does_not_panic(tmp_path: Path) -> None:
    """polars 2.1's ``pl.format`` panicked here (the root of finding 2)."""
    chunks = [
        pl.DataFrame({"line": [0, 1], "id": ["a", "b"]}),
        pl.DataFrame({"line": [2], "id": ["["]}),
    ]
    frame = pl.concat(chunks, rechunk=False)
    assert frame.n_chunks() == 2
    bad = BadLinePolicy("skip", tmp_path / "rejects").for_file(tmp_path / "f.json")
    kept = bad.reject(frame, pl.col("line") >= 2, expected="a plain id", column="id")
    assert kept["line"].to_list() == [0, 1]
    assert bad.rejects_frame().select("line", "got").rows() == [(3, "'['")]


@pytest.mark.parametrize(
    "failure",
    [
        pl.exceptions.ComputeError("cannot compare"),
        pl.exceptions.PanicException("assertion failed"),
    ],
)
def test_a_polars_failure_inside_a_reader_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    path = write_lines(tmp_path / "Books_5.json", [review("u1", "A", DAY)])

    def fail(*args: object, **kwargs: object) -> None:
        raise failure

    # numbering the rows of the fast path: nothing the reader expects to fail
    monkeypatch.setattr(pl.DataFrame, "with_row_index", fail)
    with pytest.raises(DataError) as caught:
        read_json_lines(path, {"asin": pl.String()}, BadLinePolicy("error").for_file(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: expected input the readers can process, got a failure")
    assert type(failure).__name__ in message


_MANY_BAD_FILES = r"""
import sys
from pathlib import Path
import polars as pl
from din_model.data.readers.bad_lines import BadLinePolicy
from din_model.data.readers import read_json_lines
from din_model.errors import DataError
folder = Path(sys.argv[1])
bodies = [
    b'{"id": "u\xff1"}',
    b'{"id": "u1", "as',
    b'{"id": ' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"id": ["a"]}\n{"a": 1}{"b": 2}',
    b'{"id": "u\x001"}',
    b"3",
    b'{"id": "a"}\n\n{"id": "b"}',
]
for round in range(int(sys.argv[2])):
    for index, body in enumerate(bodies):
        path = folder / f"{index}.json"
        path.write_bytes(body + b"\n")
        try:
            read_json_lines(path, {"id": pl.String()}, BadLinePolicy("error").for_file(path))
        except DataError:
            pass
print("done")
"""


def test_many_failing_fast_reads_neither_panic_nor_hang(tmp_path: Path) -> None:
    """A failed query inside ``pl.collect_all`` made polars 2.1 panic in its executor threads
    and, a few files later, hang for ever: the reader must run its queries one at a time."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _MANY_BAD_FILES, str(tmp_path), "60"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "done"
    assert "panicked" not in run.stderr
