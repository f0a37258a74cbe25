"""Packed behaviour positions: exact or to a capacity, the models give the same result.

DIN and the sum/mean BaseModel look up, score and pool the valid positions only.
Padding them to a fixed capacity (CUDA graphs) or sizing them from the batch's known
count (no GPU read-back) must not change a single output, gradient or moving average.
"""

from __future__ import annotations

import copy

import pytest
import torch

from din_model.layers.packing import PACKED_ROWS_KEY, pack_positions
from din_model.layers.pooling import masked_mean, masked_sum
from din_model.models import build_model

from .builders import random_batch, small_config, toy_feature_map


def _mask(batch_size: int = 7, length: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, length + 1, (batch_size,), generator=g)
    lengths[0], lengths[1] = 0, length
    return torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)


def test_capacity_packing_lists_the_valid_cells_first_then_flagged_fillers():
    mask = _mask()
    exact = pack_positions(mask)
    count = int(mask.sum())
    padded = pack_positions(mask, capacity=count + 6)
    assert exact.valid is None and exact.rows == count
    assert padded.rows == count + 6
    assert torch.equal(padded.index[:count], exact.index)
    assert torch.equal(padded.sample[:count], exact.sample)
    assert padded.valid[:count].all() and not padded.valid[count:].any()
    assert torch.equal(exact.index, mask.reshape(-1).nonzero().squeeze(1))
    assert torch.equal(exact.sample, exact.index // mask.shape[1])


def test_gather_scatter_and_pool_ignore_filler_rows():
    mask = _mask(seed=1)
    grid = torch.randn(*mask.shape, 3)
    values = torch.randn(mask.shape)
    for capacity in (None, int(mask.sum()) + 4):
        packed = pack_positions(mask, capacity)
        rows = packed.gather(grid)
        pooled = packed.pool(rows)
        torch.testing.assert_close(pooled, masked_sum(grid, mask))
        weights = packed.gather(values)
        torch.testing.assert_close(
            packed.pool(rows, weights), masked_sum(grid * values.unsqueeze(-1), mask)
        )
        torch.testing.assert_close(packed.scatter(weights), values.masked_fill(~mask, 0.0))


def _din(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(name, toy_feature_map(), small_config(name, **overrides)).train()


def _run(model, batch):
    out = model(batch)
    out.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads, {n: b.clone() for n, b in model.named_buffers()}


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("din", {}),
        ("din", {"attention_softmax": True}),
        ("din_dice", {}),
        ("din_dice", {"attention_softmax": True}),
        ("base", {}),
    ],
    ids=["din", "din-softmax", "din_dice", "din_dice-softmax", "base"],
)
def test_capacity_and_known_count_give_the_exact_model(name, overrides):
    model = _din(name, **overrides)
    assert model.packs_rows()
    batch = random_batch(32, 12, seed=7)
    count = int((batch["hist_item_id"] != 0).sum())
    exact = _run(copy.deepcopy(model), batch)
    padded_model = copy.deepcopy(model)
    assert padded_model.set_packed_capacity(count + 37)
    known = _run(copy.deepcopy(model), {**batch, PACKED_ROWS_KEY: torch.tensor(count)})
    for other in (_run(padded_model, batch), known):
        torch.testing.assert_close(other[0], exact[0], atol=1e-6, rtol=1e-5)
        for key, grad in exact[1].items():
            torch.testing.assert_close(other[1][key], grad, atol=1e-6, rtol=1e-4)
        for key, buffer in exact[2].items():
            torch.testing.assert_close(other[2][key], buffer, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_packed_base_model_equals_padded_pooling(mode):
    torch.manual_seed(0)
    model = build_model("base", toy_feature_map(), small_config("base", pooling_mode=mode))
    batch = random_batch(16, 10, seed=3)
    embedded = model.embedding(batch)
    keys = model.behaviour_keys(embedded)
    pooled = (masked_sum if mode == "sum" else masked_mean)(keys, embedded.mask)
    expected = model.mlp(model.deep_input(embedded, pooled)).squeeze(-1)
    torch.testing.assert_close(model(batch), expected, atol=1e-6, rtol=1e-5)


def test_max_pooling_base_model_keeps_the_padded_grid():
    model = build_model("base", toy_feature_map(), small_config("base", pooling_mode="max"))
    assert not model.packs_rows() and not model.set_packed_capacity(100)


@pytest.mark.parametrize("name", ["din", "din_dice", "base"])
def test_bf16_autocast_trains_and_keeps_dice_statistics_in_float32(name):
    model = _din(name)
    model.set_packed_capacity(None)
    batch = random_batch(32, 12, seed=5)
    reference = copy.deepcopy(model)(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        logits = model(batch)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(32))
    loss.backward()
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    torch.testing.assert_close(logits.float(), reference, atol=1e-2, rtol=0)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    for buffer in model.buffers():  # Dice's moving averages: float32, finite
        assert buffer.dtype == torch.float32 and torch.isfinite(buffer).all()
