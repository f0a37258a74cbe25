"""`prepare_dataset` on the real files of ../shared/data: the issue's figures."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from din_model.data.adapters import ingest
from din_model.data.encoding.coded import code_canonical
from din_model.data.protocols import run_protocol
from din_model.data.specs.feature_map import FeatureMap
from din_model.data.specs.spec import spec_for_layout
from din_model.pipeline.prepare import load_prepared_report, prepare_dataset

SPLITS = ("train", "valid", "test")


def read_splits(out):
    return {split: pl.read_parquet(out / f"{split}.parquet") for split in SPLITS}


@pytest.fixture(scope="module")
def magazine(amazon_magazine, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "magazine"
    return out, prepare_dataset("amazon", amazon_magazine, out, seed=42)


def test_amazon_2018_magazine_figures(magazine):
    out, report = magazine
    assert report["interactions"] == 2_302 and report["users"] == 348
    assert report["samples"] == {"train": 2_516, "valid": 696, "test": 696}
    assert report["dropped_users"] == 0 and report["rejected_lines"] == 0
    splits = read_splits(out)
    for split, frame in splits.items():
        assert len(frame) == report["samples"][split]
        assert int(frame["label"].sum()) * 2 == len(frame)  # exactly half positive
    assert report["fingerprint"].startswith("sha256:") and report["synthetic"] is False
    assert set(report["timings"]) >= {"ingest", "protocol", "validate_samples", "write"}
    assert load_prepared_report(out) == report


def test_output_columns_feature_map_and_validation_file(magazine):
    out, report = magazine
    frame = pl.read_parquet(out / "train.parquet")
    assert frame.schema == pl.Schema(
        {
            "user_id": pl.Int32,
            "item_id": pl.Int32,
            "cate_id": pl.Int32,
            "weekday": pl.Int32,
            "hour": pl.Int32,
            "hist_item_id": pl.List(pl.Int32),
            "hist_cate_id": pl.List(pl.Int32),
            "label": pl.Int8,
            "timestamp": pl.Int64,
        }
    )
    assert frame["hist_item_id"].list.len().to_list() == frame["hist_cate_id"].list.len().to_list()
    feature_map = FeatureMap.load(out)
    assert feature_map.max_len == 100 and feature_map.splits == report["samples"]
    assert feature_map.shared_tables["item_id"] == ["hist_item_id", "item_id"]
    assert feature_map.tables["item_id"].vocab_size == report["vocab_sizes"]["item_id"]
    assert [f.name for f in feature_map.group("context")] == ["weekday", "hour"]
    assert frame["item_id"].max() < feature_map.tables["item_id"].vocab_size
    validation = json.loads((out / "validation.json").read_text())
    assert validation["canonical"]["success"] and validation["samples"]["success"]
    (run,) = validation["samples"]["runs"]
    assert run["rows"] == sum(report["samples"].values())
    assert run["parameters"]["max_id__item_id"] == report["vocab_sizes"]["item_id"] - 1


def test_train_negatives_are_untouched_items_via_the_vocabulary(magazine, amazon_magazine):
    out, _ = magazine
    items = pl.read_parquet(out / "vocab" / "item_id.parquet")
    users = pl.read_parquet(out / "vocab" / "user_id.parquet")
    negatives = (
        pl.read_parquet(out / "train.parquet")
        .filter(pl.col("label") == 0)
        .join(users.rename({"raw": "user_raw", "id": "user_id"}), on="user_id")
        .join(items.rename({"raw": "item_raw", "id": "item_id"}), on="item_id")
    )
    assert len(negatives) == 2_516 // 2  # every train negative decodes to a raw id
    touched = ingest("amazon", amazon_magazine).interactions.select(
        pl.col("user_id").alias("user_raw"), pl.col("item_id").alias("item_raw")
    )
    assert negatives.join(touched, on=["user_raw", "item_raw"]).is_empty()


def test_same_seed_same_bytes_other_seed_other_negatives(magazine, amazon_magazine, tmp_path):
    out, _ = magazine
    again = tmp_path / "again"
    prepare_dataset("amazon", amazon_magazine, again, seed=42)
    for name in [f"{s}.parquet" for s in SPLITS] + ["feature_map.json", "vocab/item_id.parquet"]:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    data = ingest("amazon", amazon_magazine)
    coded = code_canonical(data, spec_for_layout(data.layout))
    first = run_protocol(coded, seed=42, max_len=100).samples
    other = run_protocol(coded, seed=43, max_len=100).samples
    negative = first.label == 0
    assert np.mean(first.item[negative] != other.item[negative]) > 0.9
    assert np.array_equal(first.item[~negative], other.item[~negative])


def test_amazon_2014_musical_instruments_all_unknown_categories(amazon_musical, tmp_path):
    report = prepare_dataset("amazon", amazon_musical, tmp_path / "musical")
    assert report["layout"] == "amazon-2014"
    assert report["interactions"] == 10_261 and report["users"] == 1_429
    assert report["samples"] == {"train": 11_948, "valid": 2_858, "test": 2_858}
    assert report["unknown_categories"] == report["items"] == 900
    assert report["vocab_sizes"]["cate_id"] == 3  # padding, OOV, "unknown"
    data = ingest("amazon", amazon_musical)
    coded = code_canonical(data, spec_for_layout(data.layout))
    samples = run_protocol(coded, seed=42, max_len=100).samples
    touched = set(
        zip(
            coded.interactions.user.tolist(),
            coded.interactions.columns["item"].tolist(),
            strict=True,
        )
    )
    negative = samples.label == 0
    pairs = zip(samples.user[negative].tolist(), samples.item[negative].tolist(), strict=True)
    assert not any(pair in touched for pair in pairs)


def test_movielens_100k_user_split(movielens_100k, tmp_path):
    out = tmp_path / "ml"
    report = prepare_dataset("movielens", movielens_100k, out)
    assert sum(report["samples"].values()) == 99_057
    splits = read_splits(out)
    users = [set(frame["user_id"].unique().to_list()) for frame in splits.values()]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert len(users[0] | users[1] | users[2]) == 943
    labels = pl.concat(frame["label"] for frame in splits.values())
    assert 0.54 < labels.mean() < 0.56
    assert {"age", "gender", "occupation"} <= set(splits["train"].columns)
    # histories are the user's earlier ratings of any value: lengths 1..100, growing per user
    lengths = splits["train"]["hist_item_id"].list.len()
    assert lengths.min() == 1 and lengths.max() == 100


def test_taobao_user_behavior_head(taobao_user_behavior, tmp_path):
    report = prepare_dataset("taobao", taobao_user_behavior, tmp_path / "ub", max_len=20)
    assert report["layout"] == "taobao-user-behavior" and report["protocol"] == "sequential"
    kept = report["users"] - report["dropped_users"]
    positions = report["interactions"] - kept  # every event after a user's first
    assert sum(report["samples"].values()) == 2 * positions
    assert report["samples"]["valid"] == report["samples"]["test"] == 2 * kept
    assert report["max_len"] == 20 and report["dropped_users"] == 0
