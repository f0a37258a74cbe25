"""Line-level readers: line numbers, gzip, encodings, and bad lines located and rejected."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from _raw_files import write_lines

from din_model.data.readers import (
    parse_dict_literal_lines,
    parse_integers,
    read_delimited,
    read_json_lines,
    read_text_lines,
)
from din_model.data.readers.bad_lines import BadLinePolicy
from din_model.errors import ConfigError, DataError

FIELDS = {"id": pl.String(), "ts": pl.String()}
CATEGORIES = {"asin": pl.String(), "categories": pl.List(pl.List(pl.String()))}


def strict(path: Path):
    return BadLinePolicy("error").for_file(path)


@pytest.mark.parametrize("name", ["plain.txt", "packed.txt.gz"])
def test_lines_keep_physical_numbers_through_blank_lines_crlf_and_gzip(
    tmp_path: Path, name: str
) -> None:
    path = write_lines(tmp_path / name, ["a", "", "  ", "b", "c"], newline="\r\n")
    frame = read_text_lines(path, bad=strict(path))
    assert frame.rows() == [(0, "a"), (3, "b"), (4, "c")]
    assert read_text_lines(path, keep_blank=True).height == 5


def test_byte_order_mark_is_dropped_and_latin1_is_decoded(tmp_path: Path) -> None:
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffuser,item\n".encode())
    assert read_text_lines(bom)["text"].to_list() == ["user,item"]
    latin = tmp_path / "u.item"
    latin.write_bytes("1|Café (1995)\n".encode("latin-1"))
    assert read_text_lines(latin, encoding="latin-1")["text"][0] == "1|Café (1995)"


def test_undecodable_line_is_located_or_rejected(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"good\nbad \xff byte\nalso good\n")
    with pytest.raises(DataError, match=r"mixed\.txt:2: expected UTF-8 text"):
        read_text_lines(path, bad=strict(path))
    policy = BadLinePolicy("skip", tmp_path / "rejects")
    frame = read_text_lines(path, bad=policy.for_file(path))
    assert frame.rows() == [(0, "good"), (2, "also good")]
    assert policy.total == 1


def test_truncated_gzip_is_a_data_error(tmp_path: Path) -> None:
    whole = write_lines(tmp_path / "whole.json.gz", ['{"id": "a", "ts": 1}'] * 2000)
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"cut\.json\.gz: expected a complete"):
        read_json_lines(cut, FIELDS, strict(cut))


def test_json_lines_fast_path_numbers_rows_by_physical_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.json", ['{"id": "a", "ts": 1}', "", '{"id": "b", "ts": "2"}'])
    frame = read_json_lines(path, FIELDS, strict(path))
    assert frame.rows() == [(0, "a", "1"), (2, "b", "2")]


def test_json_lines_bisection_finds_every_bad_line(tmp_path: Path) -> None:
    lines = [json.dumps({"id": str(i), "ts": i}) for i in range(50_000)]
    broken = {7: '{"id": "7", "ts": ', 31_234: "[1, 2]", 49_999: '{"id": "x"}{"id": "y"}'}
    for index, text in broken.items():
        lines[index] = text
    path = write_lines(tmp_path / "many.json.gz", lines)
    with pytest.raises(DataError, match=r"many\.json\.gz:8: expected one JSON object per line"):
        read_json_lines(path, FIELDS, strict(path))
    policy = BadLinePolicy("skip", tmp_path / "rejects")
    frame = read_json_lines(path, FIELDS, policy.for_file(path))
    assert frame.height == 50_000 - 3
    assert set(frame["line"]).isdisjoint(broken)
    assert frame["line"].is_sorted()
    rejects = policy.for_file(path).rejects_frame()
    assert rejects["line"].to_list() == [8, 31_235, 50_000]
    assert "a JSON list" in rejects["got"][1]


def test_json_field_of_wrong_shape_names_the_field(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "meta.json", ['{"asin": "A", "category": "Books"}'])
    lines = read_text_lines(path)
    from din_model.data.readers import parse_json_lines

    with pytest.raises(DataError, match=r"meta\.json:1: column 'category': expected a list"):
        parse_json_lines(
            lines, {"asin": pl.String(), "category": pl.List(pl.String())}, strict(path)
        )


def test_dict_literals_decode_fast_and_fall_back_to_literal_eval(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "meta.txt",
        [
            "{'asin': 'A', 'categories': [['Electronics', \"Kid's ]] Toys\"], ['Other']]}",
            "{'asin': 'B', 'categories': []}",
            "{'asin': 'C', 'title': 'no categories'}",
            "{'asin': 'D', 'categories': [['\\xe9t\\xe9']], 'price': 1.5}",
            "{'asin': 'E', 'categories': None}",
            "{'categories': [['X']], 'asin': 'F', }",
        ],
    )
    frame = parse_dict_literal_lines(read_text_lines(path), CATEGORIES, strict(path))
    assert frame.rows() == [
        (0, "A", [["Electronics", "Kid's ]] Toys"], ["Other"]]),
        (1, "B", []),
        (2, "C", None),
        (3, "D", [["été"]]),
        (4, "E", None),
        (5, "F", [["X"]]),
    ]


def test_dict_literal_strings_with_escapes_are_decoded_once_per_line(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "meta.txt",
        [
            "{'asin': 'G\\'s', 'categories': [['x']]}",
            "{'asin': 'G\\'s', 'categories': [['y']]}",
            "{'asin': \"H's\", 'categories': [['z']]}",
        ],
    )
    frame = parse_dict_literal_lines(read_text_lines(path), CATEGORIES, strict(path))
    assert frame.rows() == [(0, "G's", [["x"]]), (1, "G's", [["y"]]), (2, "H's", [["z"]])]


def test_dict_literals_are_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = write_lines(
        tmp_path / "meta.txt",
        ["{'asin': 'A', 'categories': [['x']]}", payload, "{'asin': " + payload + "}"],
    )
    policy = BadLinePolicy("skip", tmp_path / "rejects")
    frame = parse_dict_literal_lines(read_text_lines(path), CATEGORIES, policy.for_file(path))
    assert frame["asin"].to_list() == ["A"]
    assert policy.total == 2
    assert not marker.exists()


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "{'asin': 'C', 'categories': [['a', 'b'",
            r"meta\.txt:2: expected one Python dict literal",
        ),
        ("['not', 'a', 'dict']", r"meta\.txt:2: expected one Python dict literal"),
        (
            "{'asin': 'E', 'categories': 'Books'}",
            r"meta\.txt:2: column 'categories': expected a list",
        ),
    ],
)
def test_broken_literal_lines_are_located(tmp_path: Path, line: str, expected: str) -> None:
    path = write_lines(tmp_path / "meta.txt", ["{'asin': 'A', 'categories': [['x']]}", line])
    with pytest.raises(DataError, match=expected):
        parse_dict_literal_lines(read_text_lines(path), CATEGORIES, strict(path))


@pytest.mark.parametrize(
    ("separator", "encoding"),
    [("\t", "utf-8"), ("|", "latin-1"), ("::", "latin-1"), (",", "utf-8")],
)
def test_delimited_splits_on_any_separator(tmp_path: Path, separator: str, encoding: str) -> None:
    rows = [["1", "Amélie (2001)", "Comedy|Romance"], ["2", "Heat (1995)", ""]]
    if separator == "|":
        rows = [[r[0], r[1], r[2].replace("|", "/")] for r in rows]
    path = write_lines(
        tmp_path / "movies.dat", [separator.join(r) for r in rows], encoding=encoding
    )
    frame = read_delimited(
        path,
        separator=separator,
        names=["id", "title", "genres"],
        encoding=encoding,
        bad=strict(path),
    )
    assert frame["title"].to_list() == ["Amélie (2001)", "Heat (1995)"]
    assert frame["genres"][1] is None  # empty fields are null
    assert frame["line"].to_list() == [0, 1]


def test_csv_with_header_and_quoted_commas(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "movies.csv",
        [
            "movieId,title,genres ",
            "1,Toy Story (1995),Adventure|Animation",
            '11,"American President, The (1995)",Comedy|Drama',
            '12,"Quote ""inside"" title",Drama',
        ],
    )
    frame = read_delimited(
        path, separator=",", header=True, required=["movieId", "genres"], quote_char='"',
        bad=strict(path),
    )  # fmt: skip
    assert frame.columns[-3:] == ["movieId", "title", "genres"]
    assert frame["title"].to_list() == [
        "Toy Story (1995)",
        "American President, The (1995)",
        'Quote "inside" title',
    ]
    assert frame["line"].to_list() == [1, 2, 3]


def test_delimited_field_count_and_quotes_are_checked(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "ratings.csv",
        ["userId,movieId,rating,timestamp", "1,2,3.5,100", "1,2,3.5", '1,"2,3.5,100', "1,3,4,7"],
    )
    with pytest.raises(
        DataError,
        match=r"ratings\.csv:3: expected 4 comma-separated fields \(userId, movieId, rating, "
        r"timestamp\), got 3 field\(s\)",
    ):
        read_delimited(path, separator=",", header=True, quote_char='"', bad=strict(path))
    policy = BadLinePolicy("skip", tmp_path / "rejects")
    frame = read_delimited(
        path, separator=",", header=True, quote_char='"', bad=policy.for_file(path)
    )
    assert frame["line"].to_list() == [1, 4]
    assert policy.total == 2


def test_header_without_required_columns(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "raw_sample.csv", ["user,time,adgroup_id", "1,2,3"])
    with pytest.raises(DataError, match=r"raw_sample\.csv:1: expected a header line naming"):
        read_delimited(path, separator=",", header=True, required=["user", "clk"], bad=strict(path))


def test_integers_accept_whole_floats_and_reject_the_rest(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {"line": [0, 1, 2, 3, 4], "ts": ["12", " 13 ", "1.4e1", "abc", "1.5"]},
        schema={"line": pl.Int64, "ts": pl.String},
    )
    policy = BadLinePolicy("skip", tmp_path)
    parsed = parse_integers(frame, "ts", policy.for_file(tmp_path / "f"), expected="seconds")
    assert parsed.rows() == [(0, 12), (1, 13), (2, 14)]
    with pytest.raises(DataError, match=r"f:4: column 'ts': expected seconds, got 'abc'"):
        parse_integers(frame, "ts", strict(tmp_path / "f"), expected="seconds")


def test_skip_writes_a_rejects_file_with_line_reason_and_text(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.json.gz", ['{"id": "a", "ts": 1}', '{"id": "b", "ts": "x"}'])
    policy = BadLinePolicy("skip", tmp_path / "rejects")
    bad = policy.for_file(path)
    frame = parse_integers(read_json_lines(path, FIELDS, bad), "ts", bad, expected="seconds")
    assert frame["id"].to_list() == ["a"]
    written = policy.write_rejects()
    assert written == [tmp_path / "rejects" / "r.json.gz.rejects.jsonl"]
    records = [json.loads(line) for line in written[0].read_text().splitlines()]
    assert records == [
        {
            "line": 2,
            "column": "ts",
            "reason": "expected seconds",
            "got": "'x'",
            "text": '{"id": "b", "ts": "x"}',
        }
    ]
    assert policy.summary()["rejected_lines_by_file"] == {"r.json.gz": 1}


def test_policy_choices_are_checked() -> None:
    with pytest.raises(ConfigError, match="on_bad_lines must be one of error, skip"):
        BadLinePolicy("ignore")
    with pytest.raises(ConfigError, match="rejects_dir"):
        BadLinePolicy("skip", None)
