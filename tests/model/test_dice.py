"""Dice: the formula, batch vs moving statistics, masked statistics, a trained alpha."""

from __future__ import annotations

import torch

from din_model.layers.dice import Dice


def _reference(x: torch.Tensor, alpha: torch.Tensor, mean, var, eps=1e-8) -> torch.Tensor:
    p = torch.sigmoid((x - mean) / torch.sqrt(var + eps))
    return p * x + (1 - p) * alpha * x


def _with_alpha(dice: Dice, seed: int = 0) -> Dice:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        dice.alpha.copy_(torch.rand(dice.num_features, generator=g) - 0.5)
    return dice


def test_training_uses_batch_statistics_with_eps_1e_8():
    torch.manual_seed(0)
    dice = _with_alpha(Dice(5)).train()
    x = torch.randn(64, 5) * 3 + 1
    mean, var = x.mean(0), x.var(0, unbiased=False)
    torch.testing.assert_close(dice(x), _reference(x, dice.alpha, mean, var))
    assert dice.eps == 1e-8


def test_eval_uses_moving_averages_updated_with_momentum():
    torch.manual_seed(0)
    dice = _with_alpha(Dice(4)).train()
    x = torch.randn(32, 4) * 2 + 5
    dice(x)
    m = dice.momentum
    torch.testing.assert_close(dice.running_mean, m * x.mean(0))
    torch.testing.assert_close(dice.running_var, (1 - m) * 1.0 + m * x.var(0, unbiased=False))
    dice.eval()
    y = torch.randn(8, 4)
    expected = _reference(y, dice.alpha, dice.running_mean, dice.running_var)
    torch.testing.assert_close(dice(y), expected)


def test_eval_output_of_a_sample_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    dice = _with_alpha(Dice(6)).train()
    for _ in range(5):
        dice(torch.randn(32, 6) * 2 + 1)  # move the running statistics away from 0/1
    dice.eval()
    x = torch.randn(10, 6)
    together = dice(x)
    alone = torch.cat([dice(x[i : i + 1]) for i in range(10)])
    # Elementwise in eval mode, but not bit for bit: how many elements a call has decides
    # which go through the CPU's vector loop (SLEEF's sigmoid) and which through the scalar
    # tail (libm), each within an ulp or two of the exact value, and the vector width
    # differs between CPUs. torch's float32 defaults (rtol 1.3e-6, atol 1e-5) allow such
    # ulps; batch statistics instead of the running ones would move outputs by O(1).
    torch.testing.assert_close(alone, together)
    other_company = dice(torch.cat([x[:3], torch.randn(20, 6) * 100]))[:3]
    torch.testing.assert_close(other_company, together[:3])


def test_alpha_is_a_trained_parameter():
    torch.manual_seed(0)
    dice = Dice(3).train()
    assert any(p is dice.alpha for p in dice.parameters())
    optimizer = torch.optim.SGD(dice.parameters(), lr=0.1)
    before = dice.alpha.detach().clone()
    x = torch.randn(16, 3)
    dice(x).square().sum().backward()
    assert dice.alpha.grad is not None and torch.count_nonzero(dice.alpha.grad) == 3
    optimizer.step()
    assert not torch.equal(dice.alpha, before)


def test_masked_statistics_ignore_padded_positions():
    torch.manual_seed(0)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[0], [6], [2], [4]])
    x = torch.randn(4, 6, 5)
    garbage = x.masked_fill(~mask.unsqueeze(-1), 1e4)  # huge values at padding
    masked = _with_alpha(Dice(5)).train()
    on_valid_rows = _with_alpha(Dice(5)).train()
    out = masked(garbage, mask)
    expected = on_valid_rows(x[mask])  # statistics of the valid rows only
    torch.testing.assert_close(out[mask], expected)
    torch.testing.assert_close(masked.running_mean, on_valid_rows.running_mean)
    torch.testing.assert_close(masked.running_var, on_valid_rows.running_var)
    # An unmasked call would have been dragged by the padding.
    unmasked = _with_alpha(Dice(5)).train()
    assert not torch.allclose(unmasked(garbage)[mask], expected)


def test_a_batch_without_valid_positions_keeps_the_moving_averages():
    dice = Dice(3).train()
    dice(torch.randn(16, 3) * 3 + 2)
    mean, var = dice.running_mean.clone(), dice.running_var.clone()
    out = dice(torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.bool))
    assert torch.isfinite(out).all()
    assert torch.equal(dice.running_mean, mean)
    assert torch.equal(dice.running_var, var)
