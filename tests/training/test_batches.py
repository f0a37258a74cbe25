"""Batches are cut by index from the split tensors, in a (seed, epoch) order."""

from __future__ import annotations

from pathlib import Path

import torch

from din_model.data.specs.feature_map import FeatureMap
from din_model.tensors.batches import epoch_permutation, iterate_batches
from din_model.tensors.split import load_split


def _split(prepared_dir: Path):
    return load_split(prepared_dir / "train.parquet", FeatureMap.load(prepared_dir))


def test_permutation_depends_only_on_seed_and_epoch() -> None:
    assert torch.equal(epoch_permutation(100, 7, 1), epoch_permutation(100, 7, 1))
    assert not torch.equal(epoch_permutation(100, 7, 1), epoch_permutation(100, 7, 2))
    assert not torch.equal(epoch_permutation(100, 7, 1), epoch_permutation(100, 8, 1))


def test_an_epoch_visits_every_row_once_with_trimmed_histories(prepared_dir: Path) -> None:
    split = _split(prepared_dir)
    seen = []
    for batch in iterate_batches(split, 100, shuffle=True, seed=3, epoch=2, trim=True):
        assert batch["item_id"].dtype == torch.int64
        width = batch["hist_item_id"].shape[1]
        # trimmed to the longest history of this batch, never dropping an event
        assert width == max(1, int((batch["hist_item_id"] != 0).sum(1).max()))
        assert batch["hist_cate_id"].shape == batch["hist_item_id"].shape
        seen.append(batch["user_id"])
    order = epoch_permutation(len(split), 3, 2)
    assert torch.equal(torch.cat(seen), split.user[order])


def test_unshuffled_batches_follow_row_order(prepared_dir: Path) -> None:
    split = _split(prepared_dir)
    labels = torch.cat([b["label"] for b in iterate_batches(split, 64, trim=False)])
    assert torch.equal(labels, split.label)
    first = next(iterate_batches(split, 64, trim=False))
    assert first["hist_item_id"].shape == (64, split.width)
    assert torch.equal(first["hist_item_id"], split.sequences["hist_item_id"][:64].long())
