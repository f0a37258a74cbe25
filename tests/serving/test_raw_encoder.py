"""The raw-request encoder on a hand-written serving folder: every rule, one at a time.

The folder is what ``din prepare`` writes (request schema, vocabularies, item table),
written here by hand so that each expected id can be read off the test. The end-to-end
proof that the encoder reproduces training is the parity tests on real data
(``tests/pipeline/test_raw_serving.py``, ``test_train_flow.py``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from din_model.data.samples.raw_inputs import RawInput
from din_model.data.specs.feature_map import FeatureMap, FeatureSpec, TableSpec
from din_model.serving.network_inputs import InputError
from din_model.serving.raw_encoder import RawEncoder

ITEMS = {"10": 2, "11": 3, "B00X": 4}  # raw item id -> model id (seen in training)
CATES = {"Drama": 2, "Comedy": 3}
HOURS = {str(h): 2 + h for h in range(24)}
MAX_LEN = 3


def _inputs() -> list[RawInput]:
    return [
        RawInput("hist_item_id", "behaviour", "sequence", "item_id", "history_item_id",
                 "item_id", "String"),
        RawInput("hist_cate_id", "behaviour", "sequence", "cate_id", "history_category",
                 "category", "String", None, True),
        RawInput("item_id", "ad", "sparse", "item_id", "item_id", "item_id", "String"),
        RawInput("cate_id", "ad", "sparse", "cate_id", "category", "category", "String",
                 None, True),
        RawInput("hour", "context", "sparse", "hour", "timestamp", "timestamp", "Int64", "hour"),
    ]  # fmt: skip


@pytest.fixture
def encoder(tmp_path: Path) -> RawEncoder:
    serving = tmp_path / "serving"
    (serving / "vocab").mkdir(parents=True)
    (serving / "raw_inputs.json").write_text(json.dumps([asdict(i) for i in _inputs()]))
    for table, vocab in (("item_id", ITEMS), ("cate_id", CATES)):
        frame = pl.DataFrame({"raw": list(vocab), "id": list(vocab.values())})
        frame.write_parquet(serving / "vocab" / f"{table}.parquet")
    pl.DataFrame({"raw": [int(h) for h in HOURS], "id": list(HOURS.values())}).cast(
        {"raw": pl.Int8, "id": pl.Int32}
    ).write_parquet(serving / "vocab" / "hour.parquet")
    # item 12 was never trained on but its category was; item 10's category is unknown
    items = {"item_id": ["10", "11", "12", "B00X"], "category": ["Horror", "Drama", "Comedy", None]}
    pl.DataFrame(items).write_parquet(serving / "items.parquet")
    tables = {
        "item_id": TableSpec("item_id", 5),
        "cate_id": TableSpec("cate_id", 4),
        "hour": TableSpec("hour", 26),
    }
    features = [
        FeatureSpec("hist_item_id", "behaviour", "sequence", "item_id", "item_id"),
        FeatureSpec("hist_cate_id", "behaviour", "sequence", "cate_id", "cate_id"),
        FeatureSpec("item_id", "ad", "sparse", "item_id"),
        FeatureSpec("cate_id", "ad", "sparse", "cate_id"),
        FeatureSpec("hour", "context", "sparse", "hour"),
    ]
    feature_map = FeatureMap("toy", "sequential", 10, tables, features)
    return RawEncoder.load(serving, feature_map, MAX_LEN)


def _request(**changes) -> dict:
    base = {"item_id": ["11"], "timestamp": [7 * 3600 + 5], "history_item_id": [["10", "B00X"]]}
    return {**base, **changes}


def test_ids_become_training_ids_and_unseen_or_missing_ones_oov(encoder: RawEncoder) -> None:
    out = encoder.encode(_request(item_id=["11", "99", None]) | {
        "timestamp": [0, 0, 0], "history_item_id": [[], [], []]})  # fmt: skip
    np.testing.assert_array_equal(out["item_id"], [3, 1, 1])
    assert out["hour"].tolist() == [HOURS["0"]] * 3


def test_integer_ids_are_the_same_items_as_their_text(encoder: RawEncoder) -> None:
    as_text = encoder.encode(_request(item_id=["10"], history_item_id=[["11", "10"]]))
    as_ints = encoder.encode(_request(item_id=[10], history_item_id=[[11, 10]]))
    for name in as_text:
        np.testing.assert_array_equal(as_text[name], as_ints[name])
    with pytest.raises(InputError, match="'item_id': expected ids"):
        encoder.encode(_request(item_id=[10.5]))


def test_categories_are_looked_up_by_item_id_unless_given(encoder: RawEncoder) -> None:
    looked_up = encoder.encode(_request(item_id=["12"], history_item_id=[["10", "11", "B00X"]]))
    assert looked_up["cate_id"].tolist() == [CATES["Comedy"]]  # untrained item, known category
    # Horror was never trained on, B00X has no category: both OOV (1), as in training
    np.testing.assert_array_equal(looked_up["hist_cate_id"], [[1, CATES["Drama"], 1]])
    given = encoder.encode(
        _request(
            item_id=["12"],
            category=["Drama"],
            history_item_id=[["10"]],
            history_category=[["Comedy"]],
        )
    )
    assert given["cate_id"].tolist() == [CATES["Drama"]]
    np.testing.assert_array_equal(given["hist_cate_id"], [[CATES["Comedy"]]])


def test_histories_keep_their_most_recent_events_and_pad_right(encoder: RawEncoder) -> None:
    out = encoder.encode(
        _request(item_id=["10", "10", "10"], timestamp=[0, 0, 0],
                 history_item_id=[["10", "11", "B00X", "11", "10"], ["11"], []])  # fmt: skip
    )
    np.testing.assert_array_equal(out["hist_item_id"], [[4, 3, 2], [3, 0, 0], [0, 0, 0]])


def test_requests_whose_histories_are_all_empty_score(encoder: RawEncoder) -> None:
    out = encoder.encode(_request(item_id=["10", "11"], timestamp=[0, 0],
                                  history_item_id=[[], []]))  # fmt: skip
    np.testing.assert_array_equal(out["hist_item_id"], [[0], [0]])


def test_bad_requests_name_the_column_and_what_was_expected(encoder: RawEncoder) -> None:
    with pytest.raises(InputError, match=r"missing column\(s\) history_item_id"):
        encoder.encode({"item_id": ["10"], "timestamp": [0]})
    with pytest.raises(InputError, match="'history_item_id': expected a list"):
        encoder.encode(_request(history_item_id=["10 11"]))
    with pytest.raises(InputError, match="'timestamp': expected unix seconds"):
        encoder.encode(_request(timestamp=["noon"]))


def test_ranking_encodes_the_user_once_for_every_candidate(encoder: RawEncoder) -> None:
    user = pl.DataFrame({"timestamp": [3600], "history_item_id": [["10", "11"]]})
    ranked = encoder.encode_ranking(user, pl.DataFrame({"item_id": ["10", "12", "nope"]}))
    rows = encoder.encode(
        {"item_id": ["10", "12", "nope"], "timestamp": [3600] * 3,
         "history_item_id": [["10", "11"]] * 3}  # fmt: skip
    )
    for name in rows:
        np.testing.assert_array_equal(ranked[name], rows[name])
    with pytest.raises(InputError, match="exactly one user row"):
        encoder.encode_ranking(pl.concat([user, user]), pl.DataFrame({"item_id": ["10"]}))


def test_a_hashed_table_hashes_the_ids_text_with_the_recorded_key(tmp_path: Path) -> None:
    from din_model.data.encoding.hashing import hashed_ids

    serving = tmp_path / "serving"
    (serving / "vocab").mkdir(parents=True)
    inputs = [RawInput("item_id", "ad", "sparse", "item_id", "item_id", "item_id", "String")]
    (serving / "raw_inputs.json").write_text(json.dumps([asdict(i) for i in inputs]))
    table = TableSpec("item_id", 2 + 97, hash_buckets=97, hash_function="fnv", hash_seed=5)
    feature_map = FeatureMap("toy", "sequential", 10, {"item_id": table},
                             [FeatureSpec("item_id", "ad", "sparse", "item_id")])  # fmt: skip
    encoder = RawEncoder.load(serving, feature_map, MAX_LEN)  # no vocabulary file needed
    out = encoder.encode({"item_id": ["B00X", 123, None]})
    expected = hashed_ids(pl.Series(["B00X", "123"]), 97, 5)
    np.testing.assert_array_equal(out["item_id"][:2], expected)  # 123 hashes as "123"
    assert out["item_id"][2] == 1  # a missing id is OOV, hashed or not


def test_json_style_mixed_ids_are_text_and_a_text_history_is_refused(
    encoder: RawEncoder,
) -> None:
    mixed = encoder.encode(_request(item_id=["10", 11], timestamp=[0, 0],
                                    history_item_id=[["10", 11], [11]]))  # fmt: skip
    np.testing.assert_array_equal(mixed["item_id"], [2, 3])
    np.testing.assert_array_equal(mixed["hist_item_id"], [[2, 3], [3, 0]])
    with pytest.raises(InputError, match="'history_item_id': expected a list"):
        encoder.encode(_request(item_id=["10", "11"], timestamp=[0, 0],
                                history_item_id=[["10"], "10 11"]))  # fmt: skip


def test_the_vectorised_lookup_of_large_batches_gives_the_same_ids(
    encoder: RawEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import din_model.serving.raw_encoder as raw_encoder

    request = _request(item_id=["10", "12", None, 11], timestamp=[0, 60, 3600, 7200],
                       history_item_id=[["10", "B00X", "x"], [], ["12"], [11, "10"]])  # fmt: skip
    by_dict = encoder.encode(request)
    monkeypatch.setattr(raw_encoder, "VECTOR_LOOKUP_MIN", 0)  # every lookup vectorised
    by_join = encoder.encode(request)
    for name in by_dict:
        np.testing.assert_array_equal(by_join[name], by_dict[name])


PLAIN_REQUESTS = [
    ({"timestamp": 3600, "history_item_id": ["10", "11"]}, ["10", "12", "nope"]),
    ({"timestamp": 7 * 3600 + 5, "history_item_id": [10, "B00X", None]}, [11, "12", None]),
    ({"timestamp": 0, "history_item_id": []}, ["11"]),
    ({"timestamp": 0, "history_item_id": None}, ["11"]),
    ({"timestamp": 86_399, "history_item_id": ["10", "11", "B00X", "12", 10, "nope", "11"]},
     ["10"]),  # longer than MAX_LEN: its most recent events  # fmt: skip
    ({"timestamp": 3600, "history_item_id": ["10", "11"], "history_category": ["Drama", None]},
     ["B00X"]),  # fmt: skip
]


@pytest.mark.parametrize(("user", "candidates"), PLAIN_REQUESTS)
def test_a_plain_ranking_request_encodes_as_the_frame_path(
    encoder: RawEncoder, user: dict, candidates: list
) -> None:
    plain = encoder.encode_plain_ranking(user, candidates)
    # pandas frames: the general path's route for JSON-style ids that mix text and integers
    frame = encoder.encode_ranking(
        pd.DataFrame([user]), pd.DataFrame({"item_id": pd.Series(candidates, dtype=object)})
    )
    assert plain is not None and plain.keys() == frame.keys()
    for name in frame:
        assert plain[name].dtype == frame[name].dtype
        np.testing.assert_array_equal(plain[name], frame[name])


@pytest.mark.parametrize(
    ("user", "candidates"),
    [
        ({"timestamp": 3600, "history_item_id": [np.int64(10)]}, ["10"]),  # not a plain id
        ({"timestamp": 3600.0, "history_item_id": ["10"]}, ["10"]),  # not integer seconds
        ({"history_item_id": ["10"]}, ["10"]),  # a missing column: the general path words it
        ({"timestamp": 3600, "history_item_id": "10"}, ["10"]),  # not a list
        ({"timestamp": 3600, "history_item_id": ["10"]}, [10.0]),  # a float id
        ({"timestamp": True, "history_item_id": ["10"]}, ["10"]),
        ({"timestamp": 3600, "history_item_id": ["10"]}, []),
    ],
)
def test_requests_that_are_not_plain_values_take_the_general_path(
    encoder: RawEncoder, user: dict, candidates: list
) -> None:
    assert encoder.encode_plain_ranking(user, candidates) is None
