"""The speed options: config parsing, fused optimizers, packed counts, bf16 and compile.

CUDA graphs need a GPU; on a CPU the option is refused with a warning and the
trainer runs as usual. What a graph needs from the CPU side (the epoch's fullest
batch, the packed count of each batch) is checked here.
"""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch

from din_model.config import resolve_config
from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.layers.packing import PACKED_ROWS_KEY
from din_model.models import build_model
from din_model.regularizers import build_regularizer
from din_model.tensors.batches import iterate_batches, max_batch_positions
from din_model.tensors.split import load_prepared_split
from din_model.training.acceleration import (
    amp_dtype,
    packed_capacity,
    wants_cuda_graphs,
)
from din_model.training.optim import make_optimizer
from din_model.training.trainer import Trainer


def test_amp_setting():
    assert amp_dtype("none") is None and amp_dtype(None) is None
    assert amp_dtype("bf16") is torch.bfloat16
    with pytest.raises(ConfigError, match="train.amp"):
        amp_dtype("fp8")


def test_cuda_graphs_on_a_cpu_are_refused_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        assert not wants_cuda_graphs({"cuda_graphs": True}, torch.device("cpu"))
    assert "CUDA" in caplog.text
    assert not wants_cuda_graphs({"cuda_graphs": False}, torch.device("cpu"))
    with pytest.raises(ConfigError, match="cuda_graphs"):
        wants_cuda_graphs({"cuda_graphs": "yes"}, torch.device("cpu"))


def test_capacity_has_headroom_and_a_round_size():
    for positions in (1, 511, 512, 10_000, 27_000):
        capacity = packed_capacity(positions)
        assert capacity >= positions * 1.05 - 1 and capacity % 512 == 0


@pytest.mark.parametrize(
    ("setting", "fused"), [(None, True), ("auto", True), (True, True), (False, None)]
)
def test_fused_optimizer_setting(setting, fused):
    model = torch.nn.Linear(3, 1)
    train = {"optimizer": "adam", "learning_rate": 0.01, "fused_optimizer": setting}
    assert make_optimizer(model, train).defaults["fused"] is fused
    with pytest.raises(ConfigError, match="fused_optimizer"):
        make_optimizer(model, {**train, "fused_optimizer": "fast"})


def test_fused_optimizer_from_the_command_line():
    config = resolve_config("din", "amazon", overrides=["train.fused_optimizer=false"])
    assert config["train"]["fused_optimizer"] is False


def test_fused_and_loop_adam_take_the_same_steps():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    twin = copy.deepcopy(model)
    x, y = torch.randn(32, 6), torch.randn(32, 1)
    for net, setting in ((model, True), (twin, False)):
        optimizer = make_optimizer(
            net, {"optimizer": "adam", "learning_rate": 0.01, "fused_optimizer": setting}
        )
        for _ in range(5):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
            optimizer.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def _split(prepared_dir):
    feature_map = FeatureMap.load(prepared_dir / "feature_map.json")
    return feature_map, load_prepared_split(prepared_dir, "train", feature_map)


def test_packed_counts_are_each_batch_valid_positions(prepared_dir):
    _, split = _split(prepared_dir)
    batches = list(
        iterate_batches(split, 100, shuffle=True, seed=3, epoch=2, trim=False, packed_rows=True)
    )
    counts = [int(b[PACKED_ROWS_KEY]) for b in batches]
    assert counts == [int((b["hist_item_id"] != 0).sum()) for b in batches]
    assert max_batch_positions(split.lengths, 100, shuffle=True, seed=3, epoch=2) == max(counts)
    plain = next(iterate_batches(split, 100))
    assert PACKED_ROWS_KEY not in plain


def _trainer(prepared_dir, fast_config, *overrides: str) -> tuple[Trainer, object]:
    feature_map, split = _split(prepared_dir)
    config = resolve_config(
        "din_dice", feature_map.dataset, layers=[fast_config], overrides=list(overrides)
    )
    torch.manual_seed(0)
    model = build_model("din_dice", feature_map, config["model"])
    optimizer = make_optimizer(model, config["train"])
    regularizer = build_regularizer("none", config["regularizer"])
    return Trainer(model, regularizer, optimizer, config["train"], torch.device("cpu")), split


def test_bf16_autocast_epoch_trains_close_to_float32(prepared_dir, fast_config):
    plain, split = _trainer(prepared_dir, fast_config)
    bf16, _ = _trainer(prepared_dir, fast_config, "train.amp=bf16")
    assert bf16.amp is torch.bfloat16
    a = plain.train_epoch(split, 1, 1)["train_loss"]
    b = bf16.train_epoch(split, 1, 1)["train_loss"]
    # bfloat16 keeps 8 significant bits: each rounded product or activation is off by up to
    # 2**-9 relative, so a loss of ~0.69 computed through a few such layers moves by a few
    # times 0.69 * 2**-9 = 1.3e-3; 0.02 allows ~15 of those, while a broken autocast (wrong
    # dtype in the loss, a dropped layer) moves the epoch's loss by tenths.
    assert math.isfinite(b) and abs(a - b) < 0.02
    assert bf16.validate(split)["auc"] > 0.5


@pytest.mark.slow
def test_compiled_model_computes_what_the_eager_one_does(prepared_dir, fast_config):
    """torch.compile (TorchInductor on the CPU): same logits and gradients, and it trains."""
    eager, split = _trainer(prepared_dir, fast_config)
    compiled, _ = _trainer(prepared_dir, fast_config, "train.compile=true")
    assert compiled.forward_module is not compiled.model
    batch = next(iterate_batches(split, 128, shuffle=True, seed=1, epoch=1))
    outputs = []
    for trainer in (eager, compiled):
        logits = trainer.forward_module(batch)
        logits.square().sum().backward()
        outputs.append((logits.detach(), [p.grad for p in trainer.model.parameters()]))
    # Inductor fuses and re-vectorises the float32 reductions (how, depends on the CPU's
    # vector width). Re-associating a sum of n float32 terms moves it by at most
    # (n - 1) * 2**-24 of the sum of |terms| (Higham 4.2); with layer widths <= 64 that is
    # 3.8e-6 per layer, about 1.5e-5 through the model's four products: rtol 1e-4 (atol
    # 1e-5 for logits near 0).
    torch.testing.assert_close(outputs[1][0], outputs[0][0], atol=1e-5, rtol=1e-4)
    # Dice divides by the root of tiny variances at initialisation, which magnifies the
    # rounding of a different operation order: compare whole gradients, not elements.
    for a, b in zip(outputs[0][1], outputs[1][1], strict=True):
        assert (b - a).norm() <= 1e-2 * a.norm() + 1e-7
    loss = compiled.train_epoch(split, 1, 1)["train_loss"]
    # Both start from the same weights and differ only by that rounding, which training then
    # carries along; the epoch's mean loss (~0.69) must agree to 0.15%, far tighter than
    # a wrongly compiled graph (another loss, a missing layer) would.
    assert abs(loss - eager.train_epoch(split, 1, 1)["train_loss"]) < 1e-3
