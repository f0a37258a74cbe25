"""Hashed tables (``din prepare --hash-buckets``): a stable hash, buckets, and real prepared data.

The hash must give the same id in every process and library version, so the
vectorised version is checked against the plain-Python definition and against
known answers, and in a process with another ``PYTHONHASHSEED``. On real
MovieLens 100K data, a hashed item table must give each raw item one id in
every split, in the candidates and in the histories, including items that the
learned vocabulary sends to OOV.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from din_model.data.encoding.hashing import (
    HASH_FUNCTION,
    expected_collisions,
    hashed_ids,
    parse_hash_buckets,
    reference_hash,
    resolve_hash_tables,
    stable_hash,
)
from din_model.data.specs.feature_map import OOV_ID, FeatureMap
from din_model.errors import ConfigError
from din_model.pipeline.prepare import prepare_dataset

VALUES = ["B000123", "", "123", "Électronique", "x" * 300, "漢字", "a", "ab", "ba"]


def test_vectorised_hash_is_the_reference_definition() -> None:
    rng = np.random.default_rng(3)
    alphabet = list("abcXYZ019é漢-_ ")
    randoms = ["".join(rng.choice(alphabet, size=rng.integers(0, 40))) for _ in range(500)]
    values = VALUES + randoms
    for seed in (0, 1, 2**40):
        hashes = stable_hash(pl.Series(values), seed)
        assert [int(h) for h in hashes] == [reference_hash(v, seed) for v in values]


def test_known_answers_pin_the_function() -> None:
    """Changing the definition changes ids of every prepared hashed table: bump the version."""
    assert HASH_FUNCTION == "fnv1a64-splitmix64-utf8/v1"
    assert reference_hash("B000123", 0) == 0x2603489F216EDF01
    assert reference_hash("B000123", 1) == 0x898D4BFA7D8997D1
    assert reference_hash("", 0) == 0xAEBE53F85CDC3C4C
    assert reference_hash("Électronique", 0) == 0x86B716F68FB7D64F


def test_integers_hash_as_their_decimal_text_and_slices_hash_alike() -> None:
    as_int = stable_hash(pl.Series([123, 7, 1_000_000_000_000]))
    as_text = stable_hash(pl.Series(["123", "7", "1000000000000"]))
    assert np.array_equal(as_int, as_text)
    series = pl.Series(VALUES)
    assert np.array_equal(stable_hash(series[3:]), stable_hash(series)[3:])


def test_the_hash_is_the_same_in_another_process() -> None:
    code = (
        "import json, sys, polars as pl; from din_model.data.encoding.hashing import stable_hash; "
        "print(json.dumps([int(h) for h in stable_hash(pl.Series(json.loads(sys.argv[1])), 5)]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(VALUES)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [int(h) for h in stable_hash(pl.Series(VALUES), 5)]


@pytest.mark.parametrize("buckets", [1, 7, 1000])
def test_ids_stay_in_their_buckets(buckets: int) -> None:
    values = pl.Series([f"item{i}" for i in range(5000)])
    ids = hashed_ids(values, buckets, seed=0)
    assert ids.dtype == np.int32
    assert ids.min() >= 2 and ids.max() <= buckets + 1
    if buckets == 1000:  # a uniform hash fills about 1 - e^-5 of them
        used = np.unique(ids).size
        assert abs((5000 - used) - expected_collisions(5000, 1000)) < 100


def test_cli_entries_and_table_names() -> None:
    assert parse_hash_buckets(["item=1_000_000", "cate=4096"]) == {"item": 1_000_000, "cate": 4096}
    tables = ["item_id", "cate_id", "weekday"]
    assert resolve_hash_tables({"item": 10, "weekday": 3}, tables) == {"item_id": 10, "weekday": 3}
    for bad in (["item"], ["item=abc"], ["=3"], ["item=0"], ["item=-2"]):
        with pytest.raises(ConfigError, match="hash-buckets"):
            parse_hash_buckets(bad)
    with pytest.raises(ConfigError, match="unknown table 'brand'.*item_id"):
        resolve_hash_tables({"brand": 10}, tables)
    with pytest.raises(ConfigError, match="twice"):
        resolve_hash_tables({"item": 10, "item_id": 20}, tables)


def test_maps_without_hash_fields_still_load(tmp_path: Path) -> None:
    payload = {
        "dataset": "amazon",
        "protocol": "sequential",
        "max_len": 5,
        "tables": {"item_id": {"name": "item_id", "vocab_size": 9, "padding_id": 0, "oov_id": 1}},
        "features": [
            {"name": "item_id", "group": "ad", "kind": "sparse", "table": "item_id"},
        ],
    }
    (tmp_path / "feature_map.json").write_text(json.dumps(payload))
    table = FeatureMap.load(tmp_path).tables["item_id"]
    assert table.vocab_size == 9 and table.hash_buckets is None


# -- real data --------------------------------------------------------------------------
ITEM_BUCKETS, CATE_BUCKETS = 400, 8


@pytest.fixture(scope="module")
def plain_and_hashed(
    movielens_100k: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("hashing")
    plain, hashed = root / "plain", root / "hashed"
    prepare_dataset("movielens", movielens_100k, plain, seed=42, max_len=20)
    prepare_dataset(
        "movielens",
        movielens_100k,
        hashed,
        seed=42,
        max_len=20,
        hash_buckets={"item": ITEM_BUCKETS, "cate_id": CATE_BUCKETS},
        hash_seed=11,
    )
    return plain, hashed


@pytest.mark.slow
def test_hashed_tables_are_recorded_and_validated(plain_and_hashed: tuple[Path, Path]) -> None:
    plain, hashed = plain_and_hashed
    feature_map = FeatureMap.load(hashed)
    item = feature_map.tables["item_id"]
    assert (item.vocab_size, item.hash_buckets, item.hash_seed) == (
        ITEM_BUCKETS + 2,
        ITEM_BUCKETS,
        11,
    )
    assert item.hash_function == HASH_FUNCTION
    assert feature_map.tables["cate_id"].vocab_size == CATE_BUCKETS + 2
    assert feature_map.tables["age"].hash_buckets is None
    assert FeatureMap.load(plain).tables["age"] == feature_map.tables["age"]
    # no vocabulary file for a hashed table: the recorded function is the mapping
    assert not (hashed / "vocab" / "item_id.parquet").exists()
    assert (hashed / "vocab" / "age.parquet").exists()
    report = json.loads((hashed / "prepare_report.json").read_text())
    assert report["validation_success"] is True  # GE: every id below vocab_size, etc.
    assert report["vocab_sizes"]["item_id"] == ITEM_BUCKETS + 2
    # the rows are the same samples: hashing changes ids, not sampling
    for split in ("train", "valid", "test"):
        a = pl.read_parquet(plain / f"{split}.parquet")
        b = pl.read_parquet(hashed / f"{split}.parquet")
        assert a.select("user_id", "label", "timestamp", "age").equals(
            b.select("user_id", "label", "timestamp", "age")
        )


@pytest.mark.slow
def test_a_raw_item_has_one_hashed_id_everywhere(plain_and_hashed: tuple[Path, Path]) -> None:
    """Via the plain run's vocabulary: plain id -> raw item -> expected hashed id."""
    plain, hashed = plain_and_hashed
    vocab = pl.read_parquet(plain / "vocab" / "item_id.parquet")  # raw -> plain id (train items)
    expected = np.zeros(int(vocab["id"].max()) + 1, dtype=np.int64)
    expected[vocab["id"].to_numpy()] = hashed_ids(vocab["raw"], ITEM_BUCKETS, seed=11)
    oov_rows = 0
    for split in ("train", "valid", "test"):
        a = pl.read_parquet(plain / f"{split}.parquet")
        b = pl.read_parquet(hashed / f"{split}.parquet")
        for column in ("item_id", "hist_item_id"):
            left, right = a[column], b[column]
            if column.startswith("hist_"):
                assert left.list.len().equals(right.list.len())
                left, right = left.explode(), right.explode()
            left, right = left.to_numpy(), right.to_numpy()
            known = left >= 2
            assert np.array_equal(right[known], expected[left[known]]), (split, column)
            # items the learned vocabulary sends to OOV get a real bucket, not OOV
            unseen = left == OOV_ID
            oov_rows += int(unseen.sum())
            assert (right[unseen] >= 2).all()
            assert right.min() >= 2 and right.max() <= ITEM_BUCKETS + 1
    assert oov_rows > 0  # user_split leaves some valid/test items unseen in train


@pytest.mark.slow
def test_collisions_are_counted_in_the_report(plain_and_hashed: tuple[Path, Path]) -> None:
    plain, hashed = plain_and_hashed
    stats = json.loads((hashed / "prepare_report.json").read_text())["hashing"]["item_id"]
    raw = pl.read_parquet(plain / "vocab" / "item_id.parquet")["raw"]  # the items seen in train
    ids = hashed_ids(raw, ITEM_BUCKETS, seed=11)
    train = stats["train_values"]
    assert train["values"] == len(raw)
    assert train["buckets_used"] == np.unique(ids).size
    assert train["collisions"] == len(raw) - np.unique(ids).size > 0
    assert stats["all_values"]["values"] >= train["values"]
    assert abs(train["collisions"] - train["expected_collisions"]) < 0.1 * train["values"]
