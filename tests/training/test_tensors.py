"""Split parquet -> pre-padded tensors, and the checks against feature_map.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import DataError
from din_model.tensors.split import load_prepared_split, load_split, pad_sequences


def test_sequences_are_right_padded_copies_of_the_lists(prepared_dir: Path) -> None:
    feature_map = FeatureMap.load(prepared_dir)
    split = load_split(prepared_dir / "train.parquet", feature_map)
    frame = pl.read_parquet(prepared_dir / "train.parquet")
    lists = frame["hist_item_id"].to_list()
    longest = max(len(row) for row in lists)
    assert split.width == longest <= feature_map.max_len
    padded = split.sequences["hist_item_id"]
    assert padded.dtype == torch.int32 and padded.is_contiguous()
    for row in (0, 1, len(lists) // 2, len(lists) - 1):
        expected = lists[row] + [0] * (longest - len(lists[row]))
        assert padded[row].tolist() == expected
    assert split.lengths.tolist() == [len(row) for row in lists]
    assert split.sparse["item_id"].tolist() == frame["item_id"].to_list()
    assert split.label.dtype == torch.float32
    assert split.label.tolist() == frame["label"].cast(pl.Float32).to_list()
    assert split.user.tolist() == frame["user_id"].to_list()


def test_pad_sequences_keeps_the_most_recent_events_when_capped() -> None:
    lengths = np.array([3, 0, 5])
    values = np.array([1, 2, 3, 10, 11, 12, 13, 14])
    out = pad_sequences(lengths, values, width=4)
    assert out.tolist() == [[1, 2, 3, 0], [0, 0, 0, 0], [11, 12, 13, 14]]


def test_max_len_override_caps_the_width(prepared_dir: Path) -> None:
    feature_map = FeatureMap.load(prepared_dir)
    split = load_split(prepared_dir / "valid.parquet", feature_map, max_len=3)
    assert split.width == 3
    assert int(split.lengths.max()) == 3


def _copy(prepared_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "prepared"
    shutil.copytree(prepared_dir, target)
    return target


def _rewrite(path: Path, change) -> None:
    change(pl.read_parquet(path)).write_parquet(path)


@pytest.mark.parametrize(
    ("change", "column", "expected"),
    [
        (lambda f: f.drop("cate_id"), "cate_id", "missing"),
        (lambda f: f.with_columns(pl.col("item_id").cast(pl.String)), "item_id", "integer"),
        (lambda f: f.with_columns(pl.lit(10_000).alias("item_id")), "item_id", "10000"),
        (lambda f: f.with_columns(pl.col("label") * 3), "label", "labels 0 or 1"),
        (
            lambda f: f.with_columns(pl.col("hist_cate_id").list.head(1)),
            "hist_cate_id",
            "same length",
        ),
    ],
    ids=["missing-column", "string-ids", "id-outside-vocabulary", "label-3", "ragged-sequences"],
)
def test_parquet_that_does_not_match_the_feature_map_names_file_and_column(
    prepared_dir: Path, tmp_path: Path, change, column: str, expected: str
) -> None:
    data = _copy(prepared_dir, tmp_path)
    _rewrite(data / "train.parquet", change)
    with pytest.raises(DataError) as error:
        load_split(data / "train.parquet", FeatureMap.load(data))
    message = str(error.value)
    assert "train.parquet" in message and f"column '{column}'" in message
    assert expected in message


def test_row_count_must_match_the_feature_map(prepared_dir: Path, tmp_path: Path) -> None:
    data = _copy(prepared_dir, tmp_path)
    _rewrite(data / "valid.parquet", lambda f: f.head(5))
    with pytest.raises(DataError, match="rows as feature_map.json records"):
        load_prepared_split(data, "valid", FeatureMap.load(data))


def test_missing_split_file_is_a_data_error(prepared_dir: Path, tmp_path: Path) -> None:
    data = _copy(prepared_dir, tmp_path)
    (data / "test.parquet").unlink()
    with pytest.raises(DataError, match="test.parquet.*no such file"):
        load_prepared_split(data, "test", FeatureMap.load(data))
