"""Feature interactions of the baselines, on field embeddings of shape (B, F, D).

* :func:`fm_second_order`: the factorisation machine's pairwise term (Rendle 2010),
  sum_{i<j} <v_i, v_j>, in O(F*D) with the square-of-sum identity (DeepFM's FM part).
* :class:`InnerProduct`: all pairwise inner products (IPNN, Qu et al. 2016).
* :class:`OuterProduct`: the outer product of the field sum, f_S f_S^T, flattened
  (OPNN with the paper's "superposition" trick, which keeps it O(D^2) instead of
  O(F^2 D^2)).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def fm_second_order(fields: Tensor) -> Tensor:
    """sum_{i<j} <fields_i, fields_j> = 0.5 * sum_d ((sum_i v_id)^2 - sum_i v_id^2) -> (B,)."""
    square_of_sum = fields.sum(1).square()
    sum_of_squares = fields.square().sum(1)
    return 0.5 * (square_of_sum - sum_of_squares).sum(1)


class InnerProduct(nn.Module):
    """<f_i, f_j> for every field pair i < j -> (B, F*(F-1)/2)."""

    def __init__(self, num_fields: int) -> None:
        super().__init__()
        self.num_fields = num_fields
        rows, cols = torch.triu_indices(num_fields, num_fields, offset=1)
        self.register_buffer("pair_index", rows * num_fields + cols, persistent=False)
        self.out_features = num_fields * (num_fields - 1) // 2

    def forward(self, fields: Tensor) -> Tensor:
        gram = torch.bmm(fields, fields.transpose(1, 2))
        return gram.flatten(1).index_select(1, self.pair_index)


class OuterProduct(nn.Module):
    """vec(f_S f_S^T) with f_S = sum of the fields -> (B, D*D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_features = dim * dim

    def forward(self, fields: Tensor) -> Tensor:
        total = fields.sum(1)
        return (total.unsqueeze(2) * total.unsqueeze(1)).flatten(1)
