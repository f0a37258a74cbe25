"""Sampling protocols on hand-built canonical tables: exact samples, splits, histories."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from _protocol_frames import canonical

from din_model.data.encoding.coded import code_canonical
from din_model.data.protocols import protocol_for_layout, run_protocol
from din_model.data.protocols.base import TEST, TRAIN, VALID
from din_model.data.protocols.history import (
    gather_index,
    segment_max,
    sort_events,
    time_order,
    user_offsets,
)
from din_model.data.specs.spec import spec_for_layout
from din_model.errors import ConfigError, DataError
from din_model.pipeline.prepare import build_samples

T0 = 1_500_000_000  # 2017-07-14 02:40:00 UTC

# u1: a, then b and c at the same second (line order decides), then d.
# u2: three events. u3: two events only -> dropped by the sequential protocol.
ROWS = [
    ("u1", "a", T0 + 100),
    ("u2", "b", T0 + 50),
    ("u1", "b", T0 + 200),
    ("u1", "c", T0 + 200),
    ("u2", "c", T0 + 60),
    ("u1", "d", T0 + 300),
    ("u2", "e", T0 + 70),
    ("u3", "a", T0 + 10),
    ("u3", "b", T0 + 20),
]
CATEGORIES = {"a": "x", "b": "y", "c": "x", "d": "z", "e": "y", "f": "z", "g": "x"}


def raw_rows(prepared, split: str) -> list[tuple]:
    """(user, target item, label, history items) with raw ids, for readable asserts."""
    users = dict(prepared.user_key.frame().select("id", "raw").iter_rows())
    items = dict(prepared.vocabularies["item_id"].frame().select("id", "raw").iter_rows())
    items[1] = "<oov>"
    frame = prepared.splits[split]
    return [
        (users[u], items[i], label, [items[h] for h in hist])
        for u, i, label, hist in frame.select("user_id", "item_id", "label", "hist_item_id").rows()
    ]


def protocol_output(data, seed=42, max_len=100):
    coded = code_canonical(data, spec_for_layout(data.layout))
    return coded, run_protocol(coded, seed=seed, max_len=max_len)


# -- shared machinery ------------------------------------------------------------------------


def test_gather_index_equals_concatenated_ranges():
    rng = np.random.default_rng(0)
    start = rng.integers(0, 50, 200)
    end = start + rng.integers(0, 7, 200)
    offsets, index = gather_index(start, end)
    expected = np.concatenate([np.arange(s, e) for s, e in zip(start, end, strict=True)])
    assert np.array_equal(index, expected)
    assert np.array_equal(np.diff(offsets), end - start)
    maxima, nonempty = segment_max(index * 10, offsets)
    assert np.array_equal(nonempty, end > start)
    assert np.array_equal(maxima[nonempty], (end[nonempty] - 1) * 10)


def test_sort_events_is_user_time_line_order_with_and_without_the_combined_key():
    rng = np.random.default_rng(1)
    user = rng.integers(0, 5, 300).astype(np.int32)
    timestamp = rng.integers(0, 4, 300).astype(np.int64) * 1_000  # many ties
    line = rng.permutation(300).astype(np.int64)
    expected = np.lexsort((line, timestamp, user))
    assert np.array_equal(sort_events(user, timestamp, line), expected)
    huge = timestamp + (1 << 61) * (np.arange(300) % 2)  # span too large: lexsort fallback
    assert np.array_equal(sort_events(user, huge, line), np.lexsort((line, huge, user)))
    offsets = user_offsets(user[expected], 5)
    assert np.array_equal(np.diff(offsets), np.bincount(user, minlength=5))
    order = time_order(timestamp, line)
    assert np.array_equal(np.argsort(order), np.lexsort((line, timestamp)))


def test_registry_maps_layouts_to_protocols():
    assert protocol_for_layout("amazon-2014") == "sequential"
    assert protocol_for_layout("taobao-user-behavior") == "sequential"
    assert protocol_for_layout("ml-100k") == "user_split"
    assert protocol_for_layout("taobao-display-ad") == "day_split"
    with pytest.raises(ConfigError, match="no feature spec for layout 'ml-5m'"):
        protocol_for_layout("ml-5m")


# -- sequential ----------------------------------------------------------------------------


def test_sequential_samples_splits_and_histories():
    prepared = build_samples(canonical(ROWS, CATEGORIES), seed=1)
    report = prepared.report
    assert report["dropped_users"] == 1 and report["kept_users"] == 2
    assert report["samples"] == {"train": 2, "valid": 4, "test": 4}
    train = raw_rows(prepared, "train")
    # u1 position 1: target b, history [a]; its negative is the one item u1 never touched (e)
    assert train == [("u1", "b", 1, ["a"]), ("u1", "e", 0, ["a"])]
    valid = raw_rows(prepared, "valid")
    # c is never a train value -> OOV; the tie b/c at the same second keeps line order
    assert valid[0] == ("u1", "<oov>", 1, ["a", "b"])
    assert valid[2] == ("u2", "<oov>", 1, ["b"])
    test = raw_rows(prepared, "test")
    assert test[0] == ("u1", "<oov>", 1, ["a", "b", "<oov>"])
    assert test[2][3] == ["b", "<oov>"]
    for split in ("train", "valid", "test"):
        labels = prepared.splits[split]["label"].to_list()
        assert labels == [1, 0] * (len(labels) // 2)


def test_sequential_ties_follow_line_not_row_position():
    data = canonical(ROWS, CATEGORIES)
    shuffled = canonical(ROWS, CATEGORIES)
    shuffled.interactions = data.interactions.reverse()  # same lines, other row order
    a = build_samples(data, seed=3).splits
    b = build_samples(shuffled, seed=3).splits
    for split in a:
        assert a[split].equals(b[split])


def test_sequential_history_is_the_last_max_len_events():
    rows = [("u", f"i{k}", T0 + k) for k in range(8)] + [("v", f"i{k}", T0) for k in range(8, 11)]
    categories = {f"i{k}": "c" for k in range(11)}
    prepared = build_samples(canonical(rows, categories), max_len=3)
    histories = prepared.splits["train"]["hist_item_id"].to_list()
    assert [len(h) for h in histories[:10:2]] == [1, 2, 3, 3, 3]
    items = dict(prepared.vocabularies["item_id"].frame().select("id", "raw").iter_rows())
    assert [items[i] for i in histories[8]] == ["i2", "i3", "i4"]  # target i5
    assert prepared.feature_map.max_len == 3


def test_negatives_are_untouched_items_and_depend_on_the_seed():
    rng = np.random.default_rng(7)
    rows = [
        (f"u{u}", f"i{item}", T0 + 10 * k)
        for u in range(60)
        for k, item in enumerate(rng.choice(40, size=rng.integers(3, 30), replace=False))
    ]
    data = canonical(rows, {f"i{k}": f"c{k % 5}" for k in range(40)})
    coded, first = protocol_output(data, seed=11)
    samples = first.samples
    negative = samples.label == 0
    touched = set(
        zip(
            coded.interactions.user.tolist(),
            coded.interactions.columns["item"].tolist(),
            strict=True,
        )
    )
    pairs = zip(samples.user[negative].tolist(), samples.item[negative].tolist(), strict=True)
    assert not any(pair in touched for pair in pairs)
    # every position has one positive followed by its negative, with the same history
    assert np.array_equal(samples.hist_start[0::2], samples.hist_start[1::2])
    assert np.array_equal(samples.hist_end[0::2], samples.hist_end[1::2])
    _, again = protocol_output(data, seed=11)
    _, other = protocol_output(data, seed=12)
    assert np.array_equal(again.samples.item, samples.item)
    assert not np.array_equal(other.samples.item[negative], samples.item[negative])
    assert np.array_equal(other.samples.item[~negative], samples.item[~negative])


def test_a_user_who_touched_every_item_cannot_get_a_negative():
    rows = [("u", "a", T0), ("u", "b", T0 + 1), ("u", "c", T0 + 2)]
    with pytest.raises(DataError, match="at least one item untouched"):
        build_samples(canonical(rows, {"a": "x", "b": "x", "c": "x"}))


def test_split_positions_are_last_second_to_last_and_the_rest():
    rows = [("u", f"i{k}", T0 + k) for k in range(6)] + [("v", "i6", T0)] * 3
    _, result = protocol_output(canonical(rows, {f"i{k}": "c" for k in range(9)}))
    positives = (result.samples.label == 1) & (result.samples.user == 0)
    assert result.samples.split[positives].tolist() == [TRAIN, TRAIN, TRAIN, VALID, TEST]


# -- user_split (movielens) ----------------------------------------------------------------


def movielens_data(n_users=40, seed=5):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        for k in range(int(rng.integers(1, 12))):
            rows.append(
                (
                    f"{u}",
                    f"{rng.integers(0, 30)}",
                    T0 + int(rng.integers(0, 5)) * 60 + k // 3,
                    float(rng.integers(1, 6)),
                )
            )
    users = pl.DataFrame(
        {
            "user_id": [f"{u}" for u in range(n_users)],
            "age": [f"{20 + u % 7}" for u in range(n_users)],
            "gender": ["M" if u % 2 else "F" for u in range(n_users)],
            "occupation": [None if u % 9 == 0 else f"job{u % 4}" for u in range(n_users)],
        }
    )
    categories = {f"{k}": f"g{k % 4}" for k in range(30)}
    return canonical(rows, categories, layout="ml-100k", dataset="movielens", users=users)


def test_user_split_every_later_rating_is_a_sample_and_users_are_disjoint():
    data = movielens_data()
    counts = data.interactions.group_by("user_id").len()["len"]
    prepared = build_samples(data, seed=3)
    report = prepared.report
    assert sum(report["samples"].values()) == int((counts - 1).sum())
    assert report["dropped_users"] == int((counts < 2).sum())
    user_sets = [set(prepared.splits[s]["user_id"].to_list()) for s in ("train", "valid", "test")]
    assert not (
        user_sets[0] & user_sets[1] or user_sets[0] & user_sets[2] or user_sets[1] & user_sets[2]
    )
    kept = int((counts >= 2).sum())
    assert report["users_per_split"]["train"] == round(0.7 * kept)
    assert report["users_per_split"]["valid"] == round(0.1 * kept)
    profile = [f.name for f in prepared.feature_map.group("user_profile")]
    assert profile == ["age", "gender", "occupation"]


def test_user_split_labels_and_full_histories():
    rows = [
        ("7", "m1", T0, 5.0),
        ("7", "m2", T0 + 1, 3.0),
        ("7", "m3", T0 + 1, 4.0),
        ("7", "m4", T0 + 2, 1.0),
    ]
    data = canonical(
        rows,
        {"m1": "g", "m2": "g", "m3": "g", "m4": "g"},
        layout="ml-100k",
        dataset="movielens",
        users=pl.DataFrame({"user_id": ["7"]}),
    )
    _, result = protocol_output(data)
    samples = result.samples
    # the 3-star rating is negative but still part of the later histories
    assert samples.label.tolist() == [0, 1, 0]
    assert (samples.hist_end - samples.hist_start).tolist() == [1, 2, 3]
    assert len(np.unique(samples.split)) == 1  # one user: one split


def test_user_split_is_seeded():
    data = movielens_data(n_users=60)
    a = build_samples(data, seed=1).splits["test"]["user_id"].unique().sort().to_list()
    b = build_samples(data, seed=1).splits["test"]["user_id"].unique().sort().to_list()
    c = build_samples(data, seed=2).splits["test"]["user_id"].unique().sort().to_list()
    assert a == b and a != c


# -- day_split (taobao display-ad) -------------------------------------------------------------

DAY = 86_400
# Beijing midnight of 2017-05-06 (UTC+8) = 2017-05-05 16:00 UTC
BJ_MIDNIGHT = 1_494_000_000 - (1_494_000_000 + 8 * 3600) % DAY


def display_ad_data(*, with_log: bool = True):
    # impressions on 4 Beijing days; one at 23:30 Beijing time of day 2 (15:30 UTC)
    rows = [
        ("1", "ad1", BJ_MIDNIGHT + 3600, None, 0),
        ("1", "ad2", BJ_MIDNIGHT + DAY + 7200, None, 1),
        ("2", "ad1", BJ_MIDNIGHT + DAY + 23 * 3600 + 1800, None, 0),
        ("2", "ad3", BJ_MIDNIGHT + 2 * DAY + 100, None, 0),
        ("1", "ad3", BJ_MIDNIGHT + 3 * DAY + 100, None, 1),
        ("3", "ad2", BJ_MIDNIGHT + 3 * DAY + 200, None, 0),
    ]
    items = pl.DataFrame(
        {
            "item_id": ["ad1", "ad2", "ad3"],
            "category": ["c1", "c2", "c1"],
            "brand": ["b1", None, "b2"],
            "campaign_id": ["k1", "k1", "k2"],
            "customer": ["x1", "x2", "x2"],
            "price": [1.0, 2.0, 3.0],
        }
    )
    profile = [
        "cms_segid",
        "cms_group_id",
        "final_gender_code",
        "age_level",
        "pvalue_level",
        "shopping_level",
        "occupation",
        "new_user_class_level",
    ]
    users = pl.DataFrame({"user_id": ["1", "2"], **{c: ["0", None] for c in profile}})
    log_rows = [
        ("1", BJ_MIDNIGHT + 10, "c1", "b1"),
        ("1", BJ_MIDNIGHT + 3600, "c2", "b9"),  # same second as the first impression: excluded
        ("1", BJ_MIDNIGHT + 5000, "c3", "b2"),
        ("2", BJ_MIDNIGHT + 50, "c2", None),
        ("9", BJ_MIDNIGHT + 60, "c9", "b9"),  # a user without impressions
    ]
    behaviors = pl.DataFrame(
        {
            "user_id": [r[0] for r in log_rows],
            "timestamp": [r[1] for r in log_rows],
            "behavior": ["pv"] * len(log_rows),
            "category": [r[2] for r in log_rows],
            "brand": [r[3] for r in log_rows],
            "line": list(range(len(log_rows))),
        }
    )
    return canonical(
        rows,
        {},
        layout="taobao-display-ad",
        dataset="taobao",
        items=items,
        users=users,
        behaviors=behaviors if with_log else None,
        pid=["430548_1007"] * 3 + ["430539_1007"] * 3,
    )


def test_day_split_by_beijing_day_with_strictly_earlier_histories():
    prepared = build_samples(display_ad_data())
    # Beijing days 0..3: the impression at 00:01 Beijing time on day 2 (16:01 UTC the day
    # before) is valid; counted in UTC days the split would be 2/2/2
    assert prepared.report["samples"] == {"train": 3, "valid": 1, "test": 2}
    assert prepared.splits["valid"]["timestamp"].to_list() == [BJ_MIDNIGHT + 2 * DAY + 100]
    train = prepared.splits["train"]
    histories = dict(
        zip(train["timestamp"].to_list(), train["hist_cate_id"].to_list(), strict=True)
    )
    first = histories[BJ_MIDNIGHT + 3600]
    assert len(first) == 1  # the log event of the same second is not history
    assert len(histories[BJ_MIDNIGHT + DAY + 7200]) == 3
    test = prepared.splits["test"]
    assert test["label"].to_list() == [1, 0]
    assert test["hist_cate_id"].list.len().to_list() == [3, 0]
    names = [f.name for f in prepared.feature_map.features]
    assert "hist_item_id" not in names and {"hist_cate_id", "hist_brand_id", "pid"} <= set(names)
    assert prepared.feature_map.feature("hist_brand_id").table == "brand_id"
    assert prepared.feature_map.max_len == 50
    # user 2's profile is all null -> OOV; user 3 has no profile row -> OOV
    assert set(prepared.splits["test"]["age_level"].to_list()) == {2, 1}


def test_day_split_without_behaviour_log_gives_empty_histories():
    prepared = build_samples(display_ad_data(with_log=False))
    for frame in prepared.splits.values():
        assert frame["hist_cate_id"].list.len().sum() == 0


def test_day_split_needs_three_days():
    data = display_ad_data()
    data.interactions = data.interactions.filter(pl.col("timestamp") < BJ_MIDNIGHT + 2 * DAY)
    with pytest.raises(DataError, match="at least 3 days"):
        build_samples(data)
