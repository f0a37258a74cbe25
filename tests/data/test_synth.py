"""`din synth amazon`: Amazon 2014-format files, deterministic, 5-core, readable by the adapter."""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from din_model.cli._main import run as run_cli
from din_model.data.sources.synth import (
    ELECTRONICS,
    SYNTHETIC_MARKER,
    generate_amazon,
    sizes_for_scale,
    write_synthetic_amazon,
)
from din_model.errors import ConfigError

SCALE = 0.005  # 962 users, 315 items, 4 categories, 8,446 reviews
REVIEWS = "reviews_Electronics_5.json.gz"
META = "meta_Electronics.json.gz"
REVIEW_KEYS = [
    "reviewerID",
    "asin",
    "reviewerName",
    "helpful",
    "reviewText",
    "overall",
    "summary",
    "unixReviewTime",
    "reviewTime",
]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "amazon"
    write_synthetic_amazon(out, SCALE, seed=7)
    return out


@pytest.fixture(scope="module")
def reviews(synth_dir: Path) -> list[dict]:
    with gzip.open(synth_dir / REVIEWS, "rt", encoding="ascii") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def meta_lines(synth_dir: Path) -> list[str]:
    with gzip.open(synth_dir / META, "rt", encoding="ascii") as handle:
        return handle.read().splitlines()


def test_scale_one_matches_electronics() -> None:
    sizes = sizes_for_scale(1.0)
    assert (sizes.users, sizes.items, sizes.categories, sizes.reviews) == (
        192_403,
        63_001,
        801,
        1_689_188,
    )
    assert sizes == ELECTRONICS
    small = sizes_for_scale(SCALE)
    assert (small.users, small.items, small.reviews) == (962, 315, 8_446)
    assert small.reviews >= 5 * max(small.users, small.items)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="--scale"):
            sizes_for_scale(bad)


def test_same_seed_same_bytes_other_seed_differs(synth_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    other = tmp_path / "other"
    write_synthetic_amazon(again, SCALE, seed=7)
    write_synthetic_amazon(other, SCALE, seed=8)
    for name in (REVIEWS, META, SYNTHETIC_MARKER):
        assert (again / name).read_bytes() == (synth_dir / name).read_bytes(), name
    assert (other / REVIEWS).read_bytes() != (synth_dir / REVIEWS).read_bytes()
    assert (other / META).read_bytes() != (synth_dir / META).read_bytes()


def test_gzip_members_carry_no_name_and_no_mtime(synth_dir: Path) -> None:
    for name in (REVIEWS, META):
        header = (synth_dir / name).read_bytes()[:10]
        assert header[:3] == b"\x1f\x8b\x08"
        assert header[3] == 0, "no FNAME/FEXTRA/FCOMMENT flags"
        assert header[4:8] == b"\0\0\0\0", "mtime 0"


def test_counts_five_core_and_no_duplicates(reviews: list[dict]) -> None:
    sizes = sizes_for_scale(SCALE)
    per_user = Counter(r["reviewerID"] for r in reviews)
    per_item = Counter(r["asin"] for r in reviews)
    assert len(reviews) == sizes.reviews
    assert len(per_user) == sizes.users
    assert len(per_item) == sizes.items
    assert min(per_user.values()) >= 5
    assert min(per_item.values()) >= 5
    assert len({(r["reviewerID"], r["asin"]) for r in reviews}) == len(reviews)


def test_review_lines_have_the_real_fields_and_formats(
    synth_dir: Path, reviews: list[dict]
) -> None:
    with gzip.open(synth_dir / REVIEWS, "rt", encoding="ascii") as handle:
        first = handle.readline()
    assert first.startswith('{"reviewerID": "A')  # the real file's key order and spacing
    named = [r for r in reviews if "reviewerName" in r]
    assert 0 < len(reviews) - len(named) < len(reviews) // 5  # a few lines have no name
    assert list(named[0]) == REVIEW_KEYS
    for r in reviews[:500]:
        assert re.fullmatch(r"A[0-9A-Z]{13}", r["reviewerID"])
        assert re.fullmatch(r"[0-9A-Z]{10}", r["asin"])
        assert r["overall"] in (1.0, 2.0, 3.0, 4.0, 5.0)
        a, b = r["helpful"]
        assert 0 <= a <= b
        day = np.datetime64(r["unixReviewTime"], "s").astype("datetime64[D]")
        assert r["unixReviewTime"] % 86_400 == 0  # day level, like the real file
        year, month, dom = str(day).split("-")
        assert r["reviewTime"] == f"{month} {int(dom)}, {year}"
    years = Counter(int(r["reviewTime"][-4:]) for r in reviews)
    assert max(years) == 2014
    assert years[2013] + years[2014] > len(reviews) // 3  # crowded into 2012-2014
    # day-level timestamps tie: many users review several items on one day
    per_user_days = Counter((r["reviewerID"], r["unixReviewTime"]) for r in reviews)
    assert sum(n > 1 for n in per_user_days.values()) > 100


def test_meta_lines_are_python_literals_not_json(
    meta_lines: list[str], reviews: list[dict]
) -> None:
    sizes = sizes_for_scale(SCALE)
    parsed = [ast.literal_eval(line) for line in meta_lines]
    assert all(isinstance(entry, dict) for entry in parsed)
    with pytest.raises(json.JSONDecodeError):
        json.loads(meta_lines[0])
    assert meta_lines[0].startswith("{'asin': '")
    by_asin = {entry["asin"]: entry for entry in parsed}
    assert len(by_asin) == len(parsed)
    reviewed = {r["asin"] for r in reviews}
    assert reviewed <= set(by_asin)
    assert len(by_asin) > len(reviewed)  # some unreviewed items, as in the real file
    leaves = {by_asin[a]["categories"][0][-1] for a in reviewed}
    assert len(leaves) == sizes.categories
    assert all(by_asin[a]["categories"][0][0] == "Electronics" for a in reviewed)
    # some items have a second path whose last entry is NOT their category
    second = [e for e in parsed if len(e["categories"]) > 1]
    assert second and all(e["categories"][1][-1] != e["categories"][0][-1] for e in second)
    assert all(isinstance(e["title"], str) and e["title"] for e in parsed)
    assert any("price" in e for e in parsed) and not all("price" in e for e in parsed)


def test_marker_describes_generator_counts_and_files(synth_dir: Path) -> None:
    marker = json.loads((synth_dir / SYNTHETIC_MARKER).read_text())
    assert marker["generator"] == "din_model.data.sources.synth.amazon"
    assert marker["version"]
    assert marker["seed"] == 7
    assert marker["scale"] == SCALE
    assert marker["sizes"]["categories"] == sizes_for_scale(SCALE).categories
    assert marker["format"] == "amazon-2014"
    sizes = sizes_for_scale(SCALE)
    counts = marker["counts"]
    assert counts["users"] == sizes.users and counts["reviews"] == sizes.reviews
    assert counts["min_reviews_per_user"] >= 5 and counts["min_reviews_per_item"] >= 5
    assert marker["parameters"]["p_anchor"] > 0.5
    for name in (REVIEWS, META):
        digest = hashlib.sha256((synth_dir / name).read_bytes()).hexdigest()
        assert marker["files"][name]["sha256"] == digest


def test_next_item_depends_on_one_recent_history_item(reviews: list[dict], meta_lines) -> None:
    """The signal DIN should find, seen from the files alone.

    A positive's category is usually the category of one of the user's last
    20 items; a random item's is much less often. And the match is to a
    subset of the history: the most common history category does NOT explain
    positives nearly as well as "any recent item" does.
    """
    category = {}
    for line in meta_lines:
        entry = ast.literal_eval(line)
        category[entry["asin"]] = entry["categories"][0][-1]
    sequences: dict[str, list[str]] = {}
    for r in reviews:  # file order is time order, same-day reviews in generated order
        sequences.setdefault(r["reviewerID"], []).append(category[r["asin"]])
    rng = np.random.default_rng(0)
    all_items = sorted({r["asin"] for r in reviews})
    hits_any = hits_top = hits_random = total = 0
    for cats in sequences.values():
        for k in range(1, len(cats)):
            recent = cats[max(0, k - 20) : k]
            top = Counter(cats[:k]).most_common(1)[0][0]
            random_cat = category[all_items[rng.integers(len(all_items))]]
            hits_any += cats[k] in recent
            hits_top += cats[k] == top
            hits_random += random_cat in recent
            total += 1
    assert hits_any / total > 0.8
    assert hits_random / total < hits_any / total - 0.15
    assert hits_top / total < hits_any / total - 0.1


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "raw"
    foreign.mkdir()
    (foreign / "precious.csv").write_text("keep me\n")
    with pytest.raises(ConfigError, match="refusing"):
        write_synthetic_amazon(foreign, SCALE, seed=1)
    assert (foreign / "precious.csv").read_text() == "keep me\n"


def test_failed_write_leaves_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from din_model.data.sources.synth import writers

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(writers, "_meta_frame", broken)
    out = tmp_path / "synth"
    with pytest.raises(OSError, match="disk full"):
        write_synthetic_amazon(out, SCALE, seed=1)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_generator_is_exact_and_duplicate_free_at_tiny_scale() -> None:
    data = generate_amazon(0.0001, seed=3)  # the floors: 20 users, 20 items
    sizes = data.sizes
    assert (sizes.users, sizes.items) == (20, 20)
    per_user = np.bincount(data.event_user, minlength=sizes.users)
    per_item = np.bincount(data.event_item, minlength=sizes.items)
    assert per_user.min() >= 5 and per_item.min() >= 5
    assert per_user.sum() == sizes.reviews
    keys = data.event_user.astype(np.int64) * sizes.items + data.event_item
    assert np.unique(keys).size == keys.size


def only_command(module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let ``din``'s real entry point register just ``module`` (the others import torch)."""
    import din_model.cli._main as main

    monkeypatch.setattr(
        main, "register_all", lambda subparsers, package: module.register(subparsers)
    )


def test_cli_writes_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from din_model.cli import synth

    only_command(synth, monkeypatch)
    out = tmp_path / "cli"
    code = run_cli(
        ["synth", "amazon", "--scale", "0.002", "--seed", "1", "--out", str(out)],
        ["din_model.cli"],
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [".din-output", SYNTHETIC_MARKER, META, REVIEWS]
    assert "385 users" in capsys.readouterr().out
    code = run_cli(["synth", "amazon", "--scale", "0", "--out", str(out)], ["din_model.cli"])
    assert code == 2


def test_the_amazon_adapter_reads_it_as_synthetic(synth_dir: Path, meta_lines: list[str]) -> None:
    from din_model.data.adapters import ingest
    from din_model.data.canonical.schema import UNKNOWN_CATEGORY

    sizes = sizes_for_scale(SCALE)
    data = ingest("amazon", synth_dir)
    assert data.layout == "amazon-2014"
    assert data.synthetic is True
    assert data.interactions.height == sizes.reviews
    assert data.interactions["user_id"].n_unique() == sizes.users
    assert data.items.height == sizes.items
    assert (data.items["category"] == UNKNOWN_CATEGORY).sum() == 0
    expected = {}
    for line in meta_lines:
        entry = ast.literal_eval(line)
        expected[entry["asin"]] = entry["categories"][0][-1]
    got = dict(zip(data.items["item_id"], data.items["category"], strict=True))
    assert got == {asin: expected[asin] for asin in got}
    assert data.items["category"].n_unique() == sizes.categories
