"""The Fig. 5 data: per-behaviour weights of a trained DIN for chosen samples."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from din_model.errors import ConfigError
from din_model.pipeline import fit, load_trained_model
from din_model.pipeline.attention_examples import DISPLAY_LENGTH, attention_examples, pick_rows
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


def _split(lengths, labels, users, categories, candidates) -> SplitTensors:
    width = max(len(c) for c in categories)
    padded = [c + [0] * (width - len(c)) for c in categories]
    return SplitTensors(
        path=Path("split.parquet"),
        sparse={"cate_id": torch.tensor(candidates, dtype=torch.int32)},
        sequences={"hist_cate_id": torch.tensor(padded, dtype=torch.int32)},
        lengths=torch.tensor(lengths),
        label=torch.tensor(labels, dtype=torch.float32),
        user=torch.tensor(users),
    )


def test_pick_rows_prefers_histories_that_mix_the_candidates_category_with_others():
    split = _split(
        lengths=[6, 3, 2, 4, 3, 5],
        labels=[1, 1, 1, 1, 0, 1],
        users=[0, 1, 2, 3, 4, 5],
        categories=[[5] * 6, [4, 7, 4], [2, 3], [3, 8, 3, 8], [3, 5, 7], [5, 5, 5, 5, 5]],
        candidates=[5, 4, 3, 5, 3, 6],
    )
    # tier 0 (candidate's category and another): rows 1 and 2, longer first; tier 1 (two
    # categories, not the candidate's): row 3; tier 2 (one category): rows 0 and 5 by
    # length. Row 4 mixes and holds its candidate's category but is a negative.
    assert pick_rows(split, 6, "hist_cate_id", "cate_id") == [1, 2, 3, 0, 5]
    # without the candidate feature, any mix ranks first; without a category, the length
    assert pick_rows(split, 6, "hist_cate_id") == [3, 1, 2, 0, 5]
    assert pick_rows(split, 6) == [0, 5, 3, 1, 2]


def test_pick_rows_prefers_a_balanced_mix_to_a_longer_history():
    split = _split(
        lengths=[6, 4, 5],
        labels=[1, 1, 1],
        users=[0, 1, 2],
        categories=[[5, 5, 5, 5, 5, 7], [5, 7, 5, 7], [7, 7, 5, 5, 5]],
        candidates=[5, 5, 5],
    )
    # min(same, other): row 0 has 1, row 1 has 2, row 2 has 2 and is longer than row 1
    assert pick_rows(split, 3, "hist_cate_id", "cate_id") == [2, 1, 0]


def test_pick_rows_counts_long_histories_as_display_length():
    split = _split(
        lengths=[DISPLAY_LENGTH + 30, DISPLAY_LENGTH, DISPLAY_LENGTH + 1, 3],
        labels=[1, 1, 1, 1],
        users=[0, 1, 2, 3],
        categories=[[2, 3] * 45, [2, 3] * 25, [2, 3] * 25 + [2], [2, 3, 2]],
        candidates=[2, 2, 2, 2],
    )
    # the three long ones tie at DISPLAY_LENGTH and keep row order: a panel of the first
    # long-enough history, not necessarily of the longest one
    assert pick_rows(split, 4, "hist_cate_id", "cate_id") == [0, 1, 2, 3]


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
        assert example.softmax is False  # the paper's unnormalised weights (the default)


def test_models_without_attention_are_refused(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    result = fit(prepared_dir, tmp_path / "base", "base", None, fast_config)
    with pytest.raises(ConfigError, match="DIN models only"):
        attention_examples(result.best_checkpoint, prepared_dir)


def test_softmax_weights_are_marked_and_sum_to_one(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    """The caption of the plot tells normalised weights from the paper's by this flag."""
    fast_config["model"]["attention_softmax"] = True
    fast_config["train"]["epochs"] = 1
    result = fit(prepared_dir, tmp_path / "softmax", "din", None, fast_config)
    examples = attention_examples(result.best_checkpoint, prepared_dir, "test", count=2)
    assert examples and all(e.softmax for e in examples)
    for example in examples:
        # float32 softmax over <= 12 positions: each weight is rounded once to 2**-24
        # relative, so the sum is off by at most 12 * 2**-24 = 7.2e-7 (plus the sum's own
        # roundings, of the same size): 1e-5 holds on any CPU
        assert sum(example.weights) == pytest.approx(1.0, abs=1e-5)
