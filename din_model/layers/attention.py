"""DIN's local activation unit and the attention pooling built on it (paper, section 4.3).

The unit scores each behaviour e_j against the candidate ad v_A with a small MLP
(80-40-1 by default). Its input is either

* ``diff_prod``: [e_j, v_A, e_j - v_A, e_j * v_A], as in the official code, or
* ``outer``: [e_j, v_A, vec(e_j v_A^T)], the outer product drawn in the paper's figure.

Neither concatenation is ever built. The first layer is linear in each block, so with
W = [W_k | W_q | W_d | W_p]:

    W [k, q, k - q, k * q] + b = (W_k + W_d) k + W_p (k * q) + ((W_q - W_d) q + b)

and the bracketed query term is computed once per sample, (B, H), then broadcast over
the L positions. The outer variant folds W_o (H, D, D) with the query into one (D, H)
matrix per sample, so vec(k q^T) (D^2 wide) never exists. The parameters keep the naive
layout (one ``nn.Linear`` over the concatenation), so the model is the official one
parameter for parameter.

Padding: in the ``packed`` mode (the default, ``diff_prod`` only) the MLP runs on the
valid positions alone (no work for padding, and Dice sees exactly the valid rows;
:meth:`AttentionPooling.pool_rows` takes rows that were never padded at all);
otherwise it runs on (B, L, H) with the mask passed to Dice. Either way the pooling sets
the weight of every padded position to exactly 0 with a mask, never by adding a large
negative number. Weights are not normalised by default (the paper: the sum keeps the
strength of the user's interest); a masked softmax is an option.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from din_model.errors import ConfigError
from din_model.layers.activations import apply_activation, make_activation
from din_model.layers.mlp import MLP
from din_model.layers.packing import PackedPositions, pack_positions
from din_model.layers.pooling import weighted_sum

ATTENTION_INPUTS = ("diff_prod", "outer")


class DiffProductInput(nn.Module):
    """First layer of the unit on [k, q, k - q, k * q], computed without the concatenation."""

    def __init__(self, dim: int, out_features: int) -> None:
        super().__init__()
        self.dim = dim
        # Naive layout: columns [W_k | W_q | W_d | W_p], each (out_features, dim).
        self.linear = nn.Linear(4 * dim, out_features)

    def _folded(self) -> tuple[Tensor, Tensor, Tensor]:
        """(W_k + W_d, W_p, W_q - W_d): the weights of k, of k * q and of q alone."""
        w_k, w_q, w_d, w_p = self.linear.weight.split(self.dim, dim=1)
        return w_k + w_d, w_p, w_q - w_d

    def forward(self, keys: Tensor, query: Tensor) -> Tensor:
        """keys (B, L, D), query (B, D) -> (B, L, H)."""
        w_key, w_product, w_query = self._folded()
        query_term = F.linear(query, w_query, self.linear.bias)  # (B, H), once per sample
        position_input = torch.cat([keys, keys * query.unsqueeze(1)], dim=-1)
        position_term = F.linear(position_input, torch.cat([w_key, w_product], dim=1))
        return position_term + query_term.unsqueeze(1)

    def rows(self, keys: Tensor, query: Tensor, sample: Tensor) -> Tensor:
        """Packed form: keys (N, D) of the valid positions, ``sample`` (N,) their row -> (N, H).

        Two accumulating matrix products instead of one over [k, k * q]: no (N, 2D) copy.
        """
        w_key, w_product, w_query = self._folded()
        query_term = F.linear(query, w_query, self.linear.bias)  # (B, H), once per sample
        hidden = torch.addmm(query_term.index_select(0, sample), keys, w_key.t())
        return torch.addmm(hidden, keys * query.index_select(0, sample), w_product.t())


class OuterProductInput(nn.Module):
    """First layer of the unit on [k, q, vec(k q^T)] (the paper's figure), without vec(k q^T)."""

    def __init__(self, dim: int, out_features: int) -> None:
        super().__init__()
        self.dim = dim
        # Naive layout: columns [W_k | W_q | W_o], W_o over vec(k q^T) in row-major order.
        self.linear = nn.Linear(2 * dim + dim * dim, out_features)

    def forward(self, keys: Tensor, query: Tensor) -> Tensor:
        """keys (B, L, D), query (B, D) -> (B, L, H)."""
        d = self.dim
        w_k, w_q, w_o = self.linear.weight.split([d, d, d * d], dim=1)
        query_term = F.linear(query, w_q, self.linear.bias)  # (B, H)
        # sum_ab W_o[h, a, b] k_a q_b = k . (W_o[h] q): one (D, H) matrix per sample.
        per_sample = torch.einsum("hab,nb->nah", w_o.view(-1, d, d), query) + w_k.t()
        return torch.baddbmm(query_term.unsqueeze(1), keys, per_sample)


class LocalActivationUnit(nn.Module):
    """a(e_j, v_A): one score per behaviour position, (B, L).

    Scores at padded positions are 0 in the packed mode and unspecified (finite) in the
    dense mode: :class:`AttentionPooling` masks them in both.
    """

    def __init__(
        self,
        dim: int,
        hidden_units: Sequence[int] = (80, 40),
        activation: str = "prelu",
        *,
        input_mode: str = "diff_prod",
        dropout: float = 0.0,
        packed: bool = True,
    ) -> None:
        super().__init__()
        if not hidden_units:
            raise ConfigError("model.attention_hidden: expected at least one layer, got []")
        if input_mode == "diff_prod":
            self.input_layer: nn.Module = DiffProductInput(dim, hidden_units[0])
        elif input_mode == "outer":
            self.input_layer = OuterProductInput(dim, hidden_units[0])
        else:
            raise ConfigError(
                f"model.attention_input: expected one of {', '.join(ATTENTION_INPUTS)}, "
                f"got {input_mode!r}"
            )
        self.input_mode = input_mode
        self.input_activation = make_activation(activation, hidden_units[0])
        self.input_dropout = nn.Dropout(dropout) if dropout > 0 else None
        self.mlp = MLP(hidden_units[0], hidden_units[1:], activation, dropout=dropout, output_dim=1)
        # The outer variant exists for fidelity to the paper's figure; it has no packed form.
        self.packed = packed and input_mode == "diff_prod"

    def forward(self, keys: Tensor, query: Tensor, mask: Tensor) -> Tensor:
        """keys (B, L, D), query (B, D), mask (B, L) -> scores (B, L)."""
        if self.packed:
            return self._packed_scores(keys, query, mask)
        hidden = self.input_layer(keys, query)
        hidden = self._activate(hidden, mask)
        return self.mlp(hidden, mask).squeeze(-1)

    def _activate(self, hidden: Tensor, mask: Tensor | None) -> Tensor:
        hidden = apply_activation(self.input_activation, hidden, mask)
        if self.input_dropout is not None:
            hidden = self.input_dropout(hidden)
        return hidden

    def row_scores(
        self, keys: Tensor, query: Tensor, sample: Tensor, valid: Tensor | None = None
    ) -> Tensor:
        """Packed form: keys (N, D) of valid positions, ``sample`` (N,) their row -> (N,).

        ``valid`` flags the real rows when the rows are padded to a fixed capacity:
        only they enter Dice's statistics (the filler rows' scores are the caller's to
        discard).
        """
        if not isinstance(self.input_layer, DiffProductInput):
            raise ConfigError("the packed activation unit needs attention_input: diff_prod")
        hidden = self._activate(self.input_layer.rows(keys, query, sample), valid)
        return self.mlp(hidden, valid).squeeze(-1)

    def _packed_scores(self, keys: Tensor, query: Tensor, mask: Tensor) -> Tensor:
        """Run the MLP on the valid positions only and scatter the scores back."""
        packed = pack_positions(mask)
        if packed.rows == 0:
            return keys.new_zeros(mask.shape)
        return packed.scatter(self.row_scores(packed.gather(keys), query, packed.sample))


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over valid positions; padded positions and rows without any valid one get 0.

    Padding is filled with the dtype's lowest value (exp underflows to exactly 0) and the
    result is masked again, so an all-padding row gives zeros instead of NaN or 1/L.
    """
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=1).masked_fill(~mask, 0.0)


class AttentionPooling(nn.Module):
    """sum_j w_j e_j with w_j = a(e_j, v_A) (optionally softmax-normalised), 0 at padding.

    ``unit`` is any module mapping (keys, query, mask) to (B, L) scores: DIN uses
    :class:`LocalActivationUnit`; swapping it (e.g. for constant scores) changes the
    weighting and nothing else.
    """

    def __init__(self, unit: nn.Module, *, softmax: bool = False) -> None:
        super().__init__()
        self.unit = unit
        self.softmax = softmax

    def weights(self, keys: Tensor, query: Tensor, mask: Tensor) -> Tensor:
        """(B, L) weights of the behaviours, exactly 0 at padded positions."""
        scores = self.unit(keys, query, mask)
        if self.softmax:
            return masked_softmax(scores, mask)
        return scores.masked_fill(~mask, 0.0)

    def forward(self, keys: Tensor, query: Tensor, mask: Tensor) -> Tensor:
        """(B, D) interest vector of each sample with respect to its candidate."""
        return weighted_sum(keys, self.weights(keys, query, mask))

    def row_weights(
        self, rows: Tensor, query: Tensor, packed: PackedPositions, mask: Tensor
    ) -> Tensor:
        """(N,) weights of packed rows (``unit`` must offer ``row_scores``); 0 for filler rows."""
        scores = self.unit.row_scores(rows, query, packed.sample, packed.valid)
        if self.softmax:
            return packed.gather(masked_softmax(packed.scatter(scores), mask))
        if packed.valid is not None:
            scores = scores * packed.valid.to(scores.dtype)
        return scores

    def pool_rows(
        self, rows: Tensor, query: Tensor, packed: PackedPositions, mask: Tensor
    ) -> Tensor:
        """The interest vectors from packed rows: sum over each sample's rows, (B, D).

        ``rows`` (N, D) are the behaviour vectors of the packed positions (``mask``
        (B, L) is the grid they came from); the padding is never materialised.
        """
        return packed.pool(rows, self.row_weights(rows, query, packed, mask))

    def extra_repr(self) -> str:
        return f"softmax={self.softmax}"
