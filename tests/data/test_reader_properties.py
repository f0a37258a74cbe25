"""Property: whatever the lines of a raw file, the readers keep or reject each one, and only
ever raise the project's own errors.

Files are generated as mixtures of valid lines and corrupted ones (truncated,
wrong types, JSON lists and objects, values out of range, NUL and non-UTF-8
bytes, very deep nesting, blank lines, repeated lines) for MovieLens
``u.data``, Amazon reviews (JSON lines), Amazon metadata (2014 Python
literals, 2018 JSON lines) and Taobao ``UserBehavior.csv``. Each file is read

* at the reader level (the adapter's per-file function, before the canonical
  assembly drops duplicates): under ``"skip"`` the 0-based ``line`` of the kept
  rows and the rejected lines partition the non-blank input lines exactly,
  valid lines are all kept and out-of-range ones all rejected; under
  ``"error"`` the read succeeds only when skip rejects nothing, and otherwise
  names a line that skip rejects;
* through ``ingest`` in both modes: nothing but a :class:`DinError` escapes.

Bounded and reproducible: ``derandomize=True`` and no example database, so CI
runs the same examples every time, in well under a minute.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from din_model.data.adapters import amazon, ingest, movielens, taobao
from din_model.data.readers import (
    parse_dict_literal_lines,
    parse_json_lines,
    read_text_lines,
    require_lines,
    require_values,
)
from din_model.data.readers.bad_lines import BadLinePolicy, BadLines
from din_model.errors import DataError, DinError

EXAMPLES = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DUPLICATE = ("<repeat an earlier line>",)
VALID, INVALID, UNKNOWN, BLANK = "valid", "invalid", "unknown", "blank"
TS = st.integers(1_300_000_000, 1_500_000_000)
ODD_TEXT = st.text(st.characters(exclude_characters="\n", exclude_categories=("Cs",)), max_size=6)
OUT_OF_RANGE_TS = st.sampled_from([-1, 0, 86_400, 4_102_444_800, 32_503_680_000, 1_400_000_000_000])
# the legitimate ways for a whole read to fail: an empty file, or every line bad
NOTHING_LEFT = re.compile(r"got an empty file|got none left after skipping bad lines")


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


DEEP = st.sampled_from([40, 3_000]).map(_deep)


# --- line generators ---------------------------------------------------------------------------


def _file(
    valid: st.SearchStrategy[str],
    broken: st.SearchStrategy[str],
    invalid: st.SearchStrategy[str],
) -> st.SearchStrategy[list[tuple[bytes, str]]]:
    """Raw lines, each tagged with what a reader must do with it.

    ``valid`` lines must be kept, ``invalid`` ones (out of range, key missing)
    rejected, ``blank`` ones neither; ``broken``, truncated and byte-mangled
    lines are ``unknown`` (a cut can leave a valid line), repeats keep their tag.
    """

    def tagged(strategy: st.SearchStrategy[str], tag: str) -> st.SearchStrategy:
        return strategy.map(lambda line: (line.encode("utf-8"), tag))

    truncated = valid.flatmap(
        lambda line: st.integers(1, max(1, len(line) - 1)).map(
            lambda k: (line[:k].encode(), UNKNOWN)
        )
    )
    mangled = st.tuples(
        valid,
        st.sampled_from([b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf"]),
        st.integers(0, 200),
    ).map(lambda t: (t[0].encode()[: t[2]] + t[1] + t[0].encode()[t[2] :], UNKNOWN))
    blank = st.sampled_from([b"", b" ", b"\t", b" \t  "]).map(lambda line: (line, BLANK))
    entry = st.one_of(
        tagged(valid, VALID),
        tagged(valid, VALID),
        tagged(broken, UNKNOWN),
        tagged(invalid, INVALID),
        truncated,
        mangled,
        blank,
        st.just(DUPLICATE),
    )
    return st.lists(entry, min_size=1, max_size=10).map(_resolve_repeats)


def _resolve_repeats(entries: list) -> list[tuple[bytes, str]]:
    lines: list[tuple[bytes, str]] = []
    for entry in entries:
        if entry is DUPLICATE:
            entry = lines[-1] if lines else (b"", BLANK)
        lines.append(entry)
    return lines


def _ratings_line() -> st.SearchStrategy[str]:
    fields = st.tuples(
        st.integers(1, 6),
        st.integers(1, 6),
        st.integers(1, 5),
        st.integers(874_724_710, 893_286_638),
    )
    return fields.map(lambda f: "\t".join(map(str, f)))


def _broken_ratings_line() -> st.SearchStrategy[str]:
    bad_value = st.one_of(
        st.sampled_from(["abc", "1.5", "", " ", "7", "-1", "0", "nan", "inf", "1e400", "[1, 2]"]),
        OUT_OF_RANGE_TS.map(str),
        ODD_TEXT,
        DEEP,
    )
    return st.tuples(_ratings_line(), st.integers(0, 3), bad_value, st.integers(-1, 1)).map(
        _replace_field
    )


def _out_of_range_ratings_line() -> st.SearchStrategy[str]:
    rating = st.tuples(_ratings_line(), st.just(2), st.sampled_from(["7", "-1", "0", "5.5"]))
    timestamp = st.tuples(_ratings_line(), st.just(3), OUT_OF_RANGE_TS.map(str))
    return st.one_of(rating, timestamp).map(lambda t: _replace_field((*t, 0)))


def _replace_field(t: tuple[str, int, str, int]) -> str:
    line, index, value, extra = t
    fields = line.split("\t")
    fields[index] = value
    if extra < 0:
        fields.pop()
    elif extra > 0:
        fields.append("5")
    return "\t".join(fields)


def _review(user: object, asin: object, overall: object, ts: object) -> dict[str, object]:
    return {"reviewerID": user, "asin": asin, "overall": overall, "unixReviewTime": ts, "x": "y"}


def _review_line() -> st.SearchStrategy[str]:
    record = st.builds(
        _review,
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(["A", "B", "C"]),
        st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]),
        TS,
    )
    return record.map(json.dumps)


JSON_JUNK = st.one_of(
    st.sampled_from([None, True, 1.5, "x", "", [], {}, ["a", "b"], {"k": "v"}, 7, -1, 0, 1e300]),
    OUT_OF_RANGE_TS,
    ODD_TEXT,
)


def _broken_review_line() -> st.SearchStrategy[str]:
    field = st.sampled_from(["reviewerID", "asin", "overall", "unixReviewTime"])
    replaced = st.tuples(_review_line(), field, JSON_JUNK).map(
        lambda t: json.dumps({**json.loads(t[0]), t[1]: t[2]}, ensure_ascii=False)
    )
    dropped = st.tuples(_review_line(), field).map(
        lambda t: json.dumps({k: v for k, v in json.loads(t[0]).items() if k != t[1]})
    )
    nested = st.tuples(_review_line(), field, DEEP).map(_nest_json_field)
    unicode_escape = st.sampled_from(['"\\ud800"', '"\\u0000"', '"a\\u2028b"']).flatmap(
        lambda value: _review_line().map(lambda line: line.replace('"u', f"{value[:-1]}u", 1))
    )
    listed = st.tuples(  # ids that are JSON lists, as in the review's polars panic
        _review_line(),
        st.sampled_from(["reviewerID", "asin"]),
        st.sampled_from([["a", "b"], ["c"]]),
    ).map(lambda t: json.dumps({**json.loads(t[0]), t[1]: t[2]}))
    not_object = st.sampled_from(['["a", 1]', "3", '"text"', "null", '{"a": 1}{"b": 2}', "{"])
    return st.one_of(replaced, listed, listed, dropped, nested, unicode_escape, not_object)


def _out_of_range_review_line() -> st.SearchStrategy[str]:
    record = st.builds(
        _review,
        st.just("u1"),
        st.just("A"),
        st.sampled_from([0, 6, -1, 5.5, 0.5]),
        TS,
    ) | st.builds(_review, st.just("u2"), st.just("B"), st.just(4.0), OUT_OF_RANGE_TS)
    return record.map(json.dumps)


def _meta_2014_line() -> st.SearchStrategy[str]:
    categories = st.lists(
        st.lists(st.sampled_from(["Books", "Toys", "Kid's"]), max_size=3), max_size=2
    )
    record = st.builds(
        lambda asin, cats: {"asin": asin, "title": "t", "categories": cats},
        st.sampled_from(["A", "B", "C"]),
        categories,
    )
    return record.map(repr)


def _broken_meta_2014_line() -> st.SearchStrategy[str]:
    value = st.one_of(
        st.sampled_from(["'Books'", "[['a', 1]]", "None", "[[[['x']]]]", "__import__('os')"]), DEEP
    )
    replaced = st.tuples(_meta_2014_line(), st.sampled_from(["asin", "categories"]), value).map(
        lambda t: re.sub(rf"'{t[1]}': ('[^']*'|\[.*?\]\](?=[,}}]))", f"'{t[1]}': {t[2]}", t[0])
    )
    not_dict = st.sampled_from(["['asin', 'A']", "{'asin': 'A'", "{'asin': 'A',}}", "{1: 2}"])
    return st.one_of(replaced, not_dict)


def _meta_2014_line_without_asin() -> st.SearchStrategy[str]:
    return st.sampled_from(["{'title': 't', 'categories': [['Books']]}", "{'asin': None}"])


def _meta_2018_line() -> st.SearchStrategy[str]:
    record = st.builds(
        lambda asin, cats: {"asin": asin, "category": cats},
        st.sampled_from(["A", "B", "C"]),
        st.lists(st.sampled_from(["Books", "Toys"]), max_size=3),
    )
    return record.map(json.dumps)


def _broken_meta_2018_line() -> st.SearchStrategy[str]:
    field = st.sampled_from(["asin", "category"])
    replaced = st.tuples(_meta_2018_line(), field, JSON_JUNK).map(
        lambda t: json.dumps({**json.loads(t[0]), t[1]: t[2]}, ensure_ascii=False)
    )
    nested = st.tuples(_meta_2018_line(), field, DEEP).map(_nest_json_field)
    return st.one_of(replaced, nested, st.sampled_from(['["asin"]', "{", '{"asin": "A"} x']))


def _nest_json_field(t: tuple[str, str, str]) -> str:
    """``field`` set to a deeply nested array (its old value moved to ``_field``)."""
    line, field, deep = t
    return line.replace(f'"{field}": ', f'"{field}": {deep}, "_{field}": ', 1)


def _meta_2018_line_without_asin() -> st.SearchStrategy[str]:
    return st.sampled_from(['{"category": ["Books"]}', '{"asin": null}', '{"asin": ""}'])


def _events_line() -> st.SearchStrategy[str]:
    fields = st.tuples(
        st.integers(1, 5),
        st.integers(1, 5),
        st.integers(1, 3),
        st.sampled_from(["pv", "cart", "fav", "buy"]),
        st.integers(1_511_544_070, 1_512_316_763),
    )
    return fields.map(lambda f: ",".join(map(str, f)))


def _broken_events_line() -> st.SearchStrategy[str]:
    value = st.one_of(
        st.sampled_from(["click", "PV", "", "1.5", "x", '"1"', "[1]", "-3"]),
        OUT_OF_RANGE_TS.map(str),
        ODD_TEXT,
        DEEP,
    )
    return st.tuples(_events_line(), st.integers(0, 4), value, st.integers(-1, 1)).map(
        lambda t: ",".join(_replace_field((t[0].replace(",", "\t"), *t[1:])).split("\t"))
    )


def _out_of_range_events_line() -> st.SearchStrategy[str]:
    timestamp = st.tuples(_events_line(), st.just(4), OUT_OF_RANGE_TS.map(str))
    behavior = st.tuples(_events_line(), st.just(3), st.sampled_from(["click", "PV", "view"]))
    return st.one_of(timestamp, behavior).map(
        lambda t: ",".join(_replace_field((t[0].replace(",", "\t"), t[1], t[2], 0)).split("\t"))
    )


# --- reading ---------------------------------------------------------------------------------


def _write(path: Path, entries: list[tuple[bytes, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + b"\n" for line, _ in entries))
    return path


def _read_meta(path: Path, bad: BadLines, literal: bool) -> pl.DataFrame:
    """The reader part of ``amazon_meta.read_item_categories``, without the asin filter."""
    lines = read_text_lines(path, bad=bad)
    require_lines(lines, path, "one metadata record per line")
    if literal:
        fields = {"asin": pl.String(), "categories": pl.List(pl.List(pl.String()))}
        records = parse_dict_literal_lines(lines, fields, bad)
    else:
        records = parse_json_lines(
            lines, {"asin": pl.String(), "category": pl.List(pl.String())}, bad
        )
    return require_values(records, ["asin"], bad)


def _check_partition(
    read: Callable[[BadLines], pl.DataFrame], path: Path, entries: list[tuple[bytes, str]]
) -> None:
    """Skip: kept + rejected == non-blank lines, disjoint, each tag honoured.

    Error: the read succeeds only when skip rejects nothing, and otherwise
    names a line that skip rejects.
    """
    tags = {index: tag for index, (_, tag) in enumerate(entries)}
    expected = {index for index, tag in tags.items() if tag != BLANK}
    skipping = BadLinePolicy("skip", path.parent / "rejects").for_file(path)
    try:
        kept = set(read(skipping)["line"].to_list())
    except DataError as exc:
        assert NOTHING_LEFT.search(str(exc)), exc
        kept = set()
    rejected = {line - 1 for line in skipping.rejects_frame()["line"].to_list()}
    assert not kept & rejected, f"kept and rejected: {sorted(kept & rejected)}"
    assert kept | rejected == expected, f"lost: {sorted(expected - kept - rejected)}"
    assert not {i for i in rejected if tags[i] == VALID}, "a valid line was rejected"
    assert not {i for i in kept if tags[i] == INVALID}, "an invalid line was kept"
    strict = BadLinePolicy("error").for_file(path)
    try:
        read(strict)
    except DataError as exc:
        assert rejected or NOTHING_LEFT.search(str(exc)), exc
        if exc.line is not None:
            assert exc.line - 1 in rejected  # the error names a line that skip rejects
    else:
        assert not rejected


def _ingest_raises_only_project_errors(dataset: str, folder: Path) -> None:
    for mode in ("error", "skip"):
        try:
            ingest(dataset, folder, on_bad_lines=mode, rejects_dir=folder.parent / f"rj-{mode}")
        except DinError as exc:
            if mode == "skip":
                assert isinstance(exc, DataError) and NOTHING_LEFT.search(str(exc)), exc
        except (Exception, pl.exceptions.PanicException) as exc:  # the property under test
            pytest.fail(f"{dataset} ({mode}) raised {type(exc).__name__}: {exc}")


# --- the properties ----------------------------------------------------------------------------


@EXAMPLES
@given(lines=_file(_ratings_line(), _broken_ratings_line(), _out_of_range_ratings_line()))
def test_movielens_ratings_lines_are_kept_or_rejected(lines: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ml-100k"
        path = _write(folder / "u.data", lines)
        _check_partition(
            lambda bad: movielens.read_ratings(path, movielens.ML_100K, bad), path, lines
        )
        _ingest_raises_only_project_errors("movielens", folder)


@EXAMPLES
@given(lines=_file(_review_line(), _broken_review_line(), _out_of_range_review_line()))
def test_amazon_review_lines_are_kept_or_rejected(lines: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "books" / "Books_5.json", lines)
        _check_partition(lambda bad: amazon.read_reviews(path, bad)[0], path, lines)
        _ingest_raises_only_project_errors("amazon", path.parent)


@EXAMPLES
@given(lines=_file(_meta_2014_line(), _broken_meta_2014_line(), _meta_2014_line_without_asin()))
def test_amazon_2014_metadata_lines_are_kept_or_rejected(lines: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "books"
        path = _write(folder / "meta_Books.json", lines)
        _check_partition(lambda bad: _read_meta(path, bad, literal=True), path, lines)
        reviews = [json.dumps(_review(u, a, 5.0, 1_400_000_000)) for u in "xy" for a in "ABC"]
        _write(folder / "reviews_Books_5.json", [(line.encode(), VALID) for line in reviews])
        _ingest_raises_only_project_errors("amazon", folder)


@EXAMPLES
@given(lines=_file(_meta_2018_line(), _broken_meta_2018_line(), _meta_2018_line_without_asin()))
def test_amazon_2018_metadata_lines_are_kept_or_rejected(lines: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "books"
        path = _write(folder / "meta_Books.json", lines)
        _check_partition(lambda bad: _read_meta(path, bad, literal=False), path, lines)
        reviews = [json.dumps(_review(u, a, 5.0, 1_400_000_000)) for u in "xy" for a in "ABC"]
        _write(folder / "Books_5.json", [(line.encode(), VALID) for line in reviews])
        _ingest_raises_only_project_errors("amazon", folder)


@EXAMPLES
@given(lines=_file(_events_line(), _broken_events_line(), _out_of_range_events_line()))
def test_taobao_event_lines_are_kept_or_rejected(lines: list[tuple[bytes, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp) / "ub" / "UserBehavior.csv", lines)
        _check_partition(lambda bad: taobao.read_events(path, bad), path, lines)
        _ingest_raises_only_project_errors("taobao", path.parent)
