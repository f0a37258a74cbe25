"""The Fig. 5 data: per-behaviour weights of a trained DIN for chosen samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from din_model.errors import ConfigError
from din_model.pipeline import fit, load_trained_model
from din_model.pipeline.attention_examples import attention_examples, pick_rows
from din_model.tensors.batches import take
from din_model.tensors.split import SplitTensors, load_prepared_split


def test_pick_rows_takes_the_positives_with_the_longest_histories_one_per_user():
    split = SplitTensors(
        path=Path("split.parquet"),
        sparse={},
        sequences={},
        lengths=torch.tensor([3, 9, 9, 5, 0, 12, 8]),
        label=torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]),
        user=torch.tensor([0, 1, 2, 3, 4, 5, 1]),
    )
    # row 5 is longest but negative; rows 1 and 2 tie and keep their order
    assert pick_rows(split, 3) == [1, 2, 3]  # row 6 is user 1 again
    assert pick_rows(split, 10) == [1, 2, 3, 0]  # row 4 has no history to show


def test_examples_carry_the_weights_the_model_gives(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    result = fit(prepared_dir, tmp_path / "din", "din", None, fast_config)
    examples = attention_examples(result.best_checkpoint, prepared_dir, "test", count=2)
    assert len(examples) == 2

    model, feature_map, config = load_trained_model(result.best_checkpoint)
    test = load_prepared_split(prepared_dir, "test", feature_map, config["train"]["max_len"])
    for example in examples:
        assert example.label == 1
        length = int(test.lengths[example.row])
        assert len(example.weights) == length == len(example.history["hist_item_id"])
        batch = take(test, torch.tensor([example.row]))
        with torch.no_grad():
            expected = model.attention_weights(batch)[0, :length]
        # A batch of one row against the report's batch of two: the CPU's matrix kernels may
        # block the float32 sums differently, which moves each of the attention MLP's (width
        # <= 64) outputs by at most 63 * 2**-24 = 3.8e-6 relative per layer (Higham 4.2).
        assert example.weights == pytest.approx(expected.tolist(), rel=1e-4, abs=1e-6)
        assert example.history["hist_cate_id"] == batch["hist_cate_id"][0, :length].tolist()
        assert example.candidate["cate_id"] == int(batch["cate_id"][0])
        same = example.same_as_candidate("hist_cate_id")
        assert same == [c == example.candidate["cate_id"] for c in example.history["hist_cate_id"]]
        assert 0.0 < example.score < 1.0


def test_models_without_attention_are_refused(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    result = fit(prepared_dir, tmp_path / "base", "base", None, fast_config)
    with pytest.raises(ConfigError, match="DIN models only"):
        attention_examples(result.best_checkpoint, prepared_dir)
