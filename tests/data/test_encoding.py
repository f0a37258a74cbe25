"""Id encoding: train-only vocabularies, shared tables, user key, context, specs."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from _protocol_frames import canonical

from din_model.data.canonical import context
from din_model.data.encoding.vocabulary import (
    Dictionary,
    build_user_key,
    build_vocabulary,
    seen_mask,
)
from din_model.data.specs.feature_map import FeatureMap, TableSpec
from din_model.data.specs.spec import load_spec, parse_spec
from din_model.errors import ConfigError
from din_model.pipeline.prepare import build_samples
from din_model.registry import spec_families

T0 = 1_500_000_000


def test_dictionary_codes_follow_sorted_raw_order_and_nulls_get_the_last_code():
    d = Dictionary.from_columns("item", [pl.Series(["b", "a", None]), pl.Series(["c", "a"])])
    assert d.values.to_list() == ["a", "b", "c"]
    assert d.codes(pl.Series(["c", None, "a"])).tolist() == [2, 3, 0]
    numbers = Dictionary.from_columns("hour", [pl.Series([5, 1, 3], dtype=pl.Int8)])
    assert numbers.codes(pl.Series([3, None, 5], dtype=pl.Int8)).tolist() == [1, 3, 2]
    with pytest.raises(ValueError):
        numbers.codes(pl.Series([4], dtype=pl.Int8))


def test_vocabulary_padding_oov_and_known_ids_in_sorted_order():
    d = Dictionary.from_columns("item", [pl.Series(["d", "a", "c", "b"])])
    vocab = build_vocabulary("item", d, seen_mask(d.n_codes, np.array([3, 1, 3, 4])))
    # seen: b (code 1) and d (code 3); the null slot (code 4) is never a known value
    assert vocab.vocab_size == 4
    assert vocab.encode(np.array([0, 1, 2, 3, 4])).tolist() == [1, 2, 1, 3, 1]
    assert vocab.frame().rows() == [("b", 2), ("d", 3)]
    key = build_user_key(d, np.array([3, 0, 3]))
    assert key.n_users == 2 and key.encode(np.array([0, 3])).tolist() == [1, 2]


def test_context_weekday_and_hour_in_utc():
    # 2017-11-25 was a Saturday; 1511568000 = 2017-11-25 00:00:00 UTC
    stamps = np.array([1511568000, 1511568000 + 13 * 3600 + 59, 0, -1])
    assert context.weekday(stamps).tolist() == [5, 5, 3, 2]
    assert context.hour(stamps).tolist() == [0, 13, 0, 23]


ROWS = [
    ("u2", "b", T0 + 1),
    ("u2", "a", T0 + 2),
    ("u2", "z", T0 + 3),  # valid target of u2: never seen in training
    ("u2", "y", T0 + 4),  # test target of u2
    ("u1", "a", T0 + 5),
    ("u1", "c", T0 + 6),
    ("u1", "x", T0 + 7),
    ("u1", "w", T0 + 8),
]
CATEGORIES = {"a": "k1", "b": "k2", "c": "k1", "w": "k9", "x": "k8", "y": "k7", "z": "k6"}


def test_vocabularies_come_from_train_only_and_tables_are_shared():
    prepared = build_samples(canonical(ROWS, CATEGORIES), seed=0)
    items = prepared.vocabularies["item_id"].frame()
    item_id = dict(items.iter_rows())
    raw_item = {v: k for k, v in item_id.items()}
    train = prepared.splits["train"]
    # train rows: u1 target c after [a], u2 target a after [b], each with a negative
    assert train.filter(pl.col("label") == 1)["hist_item_id"].to_list() == [
        [item_id["a"]],
        [item_id["b"]],
    ]
    negatives = {raw_item[i] for i in train.filter(pl.col("label") == 0)["item_id"]}
    assert set(item_id) == {"a", "b", "c"} | negatives  # targets, histories, negatives
    assert list(item_id.values()) == list(range(2, 2 + len(item_id)))
    assert list(item_id) == sorted(item_id)
    for split in ("valid", "test"):
        frame = prepared.splits[split].filter(pl.col("label") == 1)
        expected_raw = {"valid": ["x", "z"], "test": ["w", "y"]}[split]
        ids = frame["item_id"].to_list()
        assert ids == [item_id.get(raw, 1) for raw in expected_raw]  # unseen -> OOV 1
    feature_map = prepared.feature_map
    assert feature_map.shared_tables["item_id"] == ["hist_item_id", "item_id"]
    assert feature_map.shared_tables["cate_id"] == ["hist_cate_id", "cate_id"]
    assert feature_map.tables["item_id"].vocab_size == len(item_id) + 2
    # no sparse value is padding; user key is 1..n_users in sorted raw order
    for frame in prepared.splits.values():
        for feature in feature_map.sparse_features:
            assert frame[feature.name].min() >= 1
    assert prepared.user_key.frame().rows() == [("u1", 1), ("u2", 2)]


def test_profile_nulls_and_missing_users_map_to_oov_and_optional_features_drop():
    rows = [(u, f"m{k}", T0 + k, 4.0) for u in ("1", "2", "3") for k in range(4)]
    users = pl.DataFrame({"user_id": ["1", "2"], "age": ["25", None], "gender": ["F", "M"]})
    data = canonical(
        rows, {f"m{k}": "g" for k in range(4)}, layout="ml-20m", dataset="movielens", users=users
    )
    prepared = build_samples(data, seed=4)
    names = [f.name for f in prepared.feature_map.group("user_profile")]
    assert names == ["age", "gender"]  # no occupation column in this layout
    assert prepared.report["omitted_features"] == ["occupation"]
    everything = pl.concat(prepared.splits.values())
    age = dict(zip(everything["user_id"].to_list(), everything["age"].to_list(), strict=True))
    key = dict(prepared.user_key.frame().iter_rows())
    assert age[key["2"]] == 1 and age[key["3"]] == 1  # null profile / no profile row: OOV
    # user "1" is train, or its age is OOV too: only train users make values known
    train_users = set(prepared.splits["train"]["user_id"].to_list())
    assert (age[key["1"]] >= 2) == (key["1"] in train_users)


def test_every_packaged_spec_parses_and_builds_a_valid_feature_map():
    for family in spec_families():
        spec = load_spec(family)
        features = spec.feature_specs()
        tables = {f.table for f in features}
        assert {f.group for f in features} >= {"behaviour", "ad", "context"}
        for sequence in (f for f in features if f.kind == "sequence"):
            assert sequence.table == sequence.target
        FeatureMap(
            dataset=family,
            protocol=spec.protocol,
            max_len=spec.max_len,
            tables={t: TableSpec(t, 3) for t in tables},
            features=features,
        ).check()
    assert load_spec("taobao_display_ad").max_len == 50
    assert load_spec("amazon").max_len == 100


def test_spec_mistakes_are_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "family: x\nlayouts: [x]\nprotocol: {name: sequential, max_len: 10}\n"
        "validation: {positive_rate: [0.5, 0.5]}\n"
        "features:\n  ad: [{name: item_id, source: item_id}]\n"
        "  behaviour: [{name: hist_cate_id, source: category, target: cate_id}]\n"
    )
    with pytest.raises(ConfigError, match="target must be an ad feature"):
        parse_spec(bad)
    bad.write_text(bad.read_text().replace("sequential", "random_walk"))
    with pytest.raises(ConfigError, match="protocol.name"):
        parse_spec(bad)
