"""Dice, the data-adaptive activation of the DIN paper (Zhou et al., KDD 2018, section 4.3).

``f(s) = p(s) * s + (1 - p(s)) * alpha * s`` with
``p(s) = sigmoid((s - E[s]) / sqrt(Var[s] + eps))``: a PReLU whose rectification point
follows the distribution of its input instead of sitting at 0.

Choices, each against a pitfall of public implementations:

* ``alpha`` is an ``nn.Parameter`` per unit (DeepCTR-Torch #93 left it untrained),
  initialised to 0 like the official code, so Dice starts as a soft ReLU.
* Training uses the batch statistics; evaluation uses moving averages kept in buffers
  (the official code used batch statistics at test time, which lets the positive and
  negative sample of a test pair influence each other: official #76, DeepCTR #360).
  In eval mode one sample's output therefore never depends on the rest of its batch.
* ``forward(x, mask)`` computes the statistics over valid positions only, so the
  padded positions of a behaviour sequence cannot move them (a FuxiCTR pitfall).
* Moving averages follow BatchNorm's convention ``running = (1 - m) * running + m * batch``
  with ``m = 0.1``: at 1024 samples a batch the average spans about ten batches,
  i.e. ten thousand samples or more, recent enough to follow the weights as they train.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

DICE_EPS = 1e-8
DICE_MOMENTUM = 0.1


class Dice(nn.Module):
    """Dice over the last dimension of ``x`` (one ``alpha`` and one mean/variance per unit)."""

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = DICE_EPS,
        momentum: float = DICE_MOMENTUM,
        alpha_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.alpha = nn.Parameter(torch.full((num_features,), float(alpha_init)))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Apply Dice to ``x`` of shape (..., D).

        ``mask`` (boolean, shape ``x.shape[:-1]``, e.g. (B, L) for x (B, L, D)) marks the
        valid positions; only they enter the batch statistics. Outputs at masked positions
        are still computed (finite) and are the caller's to discard.
        """
        if x.numel() == 0:  # no rows: no statistics to take (and no NaN to store)
            return x
        if self.training:
            centered, var = self._batch_centered(x, mask)
        else:
            centered = x - self.running_mean
            var = self.running_var
        p = torch.sigmoid(centered * torch.rsqrt(var + self.eps))
        alpha = self.alpha if p.dtype == self.alpha.dtype else self.alpha.to(p.dtype)
        # p*x + (1-p)*alpha*x == x * (alpha + p * (1 - alpha)): one multiply fewer.
        return x * torch.lerp(alpha, torch.ones_like(alpha), p)

    def _batch_centered(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """(x - batch mean, batch variance), and the moving averages updated in passing.

        The statistics are always float32 (under bf16 autocast too, where a bf16 mean
        would keep three digits); the centred values come back in ``x``'s dtype.
        """
        low_precision = x.dtype != self.running_mean.dtype
        with torch.autocast(x.device.type, enabled=False):
            stats_input = x.to(self.running_mean.dtype) if low_precision else x
            flat = stats_input.reshape(-1, self.num_features)
            if mask is None:
                mean = flat.mean(0)
                centered = stats_input - mean
                var = centered.reshape(-1, self.num_features).square().mean(0)
                has_valid = None
            else:
                # Weighted by the 0/1 mask as a matrix-vector product: no copy of the valid rows.
                weight = mask.reshape(-1).to(flat.dtype)
                count = weight.sum()
                denominator = count.clamp_min(1.0)
                mean = (weight @ flat) / denominator
                centered = stats_input - mean
                var = (weight @ centered.reshape(-1, self.num_features).square()) / denominator
                has_valid = count > 0
        self._update_running(mean.detach(), var.detach(), has_valid)
        if low_precision:
            return x - mean.to(x.dtype), var.to(x.dtype)
        return centered, var

    @torch.no_grad()
    def _update_running(self, mean: Tensor, var: Tensor, has_valid: Tensor | None) -> None:
        """Moving averages; a batch without one valid position leaves them unchanged.

        ``torch.where`` instead of an ``if`` keeps this free of a device sync.
        """
        new_mean = torch.lerp(self.running_mean, mean, self.momentum)
        new_var = torch.lerp(self.running_var, var, self.momentum)
        if has_valid is not None:
            new_mean = torch.where(has_valid, new_mean, self.running_mean)
            new_var = torch.where(has_valid, new_var, self.running_var)
        self.running_mean.copy_(new_mean)
        self.running_var.copy_(new_var)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
