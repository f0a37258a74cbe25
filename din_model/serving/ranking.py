"""Ranking: one user's history against N candidates, DIN's key projection computed once.

DIN's activation unit scores behaviour e_j against candidate v_A with an MLP whose
first layer takes [e_j, v_A, e_j - v_A, e_j * v_A]. With W = [W_k | W_q | W_d | W_p]
that layer is (:mod:`din_model.layers.attention`)

    (W_k + W_d) e_j  +  W_p (e_j * v_A)  +  ((W_q - W_d) v_A + b)

In a ranking call every candidate shares the one history, so the first term (the
"key projection", L x D x H multiply-adds) is the same for the N candidates: it is
computed once per request here instead of N times, and only the product term and the
query term are per candidate. That is half of the first layer, the largest layer of
the unit (paper sizes: D = 128, H = 80, then 80 -> 40 -> 1).

The per-candidate rest is one matrix product. For position j and hidden unit h,

    hidden[a, j, h] = v_A . (e_j * W_p[h] + W_qd[h])  +  (key[j, h] + b[h])

(W_qd = W_q - W_d), so with the request's matrix M[(j, h)] = [e_j * W_p[h] + W_qd[h],
key[j, h] + b[h]] (L*H rows of D + 1, built once) the hidden layer of all N candidates
is [v_A, 1] @ M^T, already laid out as (N, L, H): no (N, L, D) product tensor, no
broadcast additions. Dice, in eval mode an elementwise function with fixed statistics,
is applied in place with its per-unit constants folded (:func:`dice_eval_`).

The rest is the model's own modules (the unit's activation and MLP, the output
MLP) applied to the shared history's valid positions, so the result is the model's
forward pass up to float32 re-association: the key term is added to the product term
instead of accumulated inside one matrix product, and the pooling is a matrix product
instead of an index-add. Parity with the forward pass is checked to 1e-5 on
probabilities in ``tests/serving/test_ranking.py`` (the reason for that bound is there).

:class:`RankingScorer` wraps a :class:`~din_model.serving.network_runtime.NetworkRuntime`:
it takes the inputs :meth:`RawEncoder.encode_ranking` returns (N rows, the user's
features repeated) and returns the same (N,) float64 probabilities as
``network.score``. It falls back to ``network.score`` whenever the shortcut does not
apply: a runtime other than eager PyTorch (ONNX, TorchScript), a model that is not DIN
with the ``diff_prod`` unit (``base``, ``outer``, a replaced unit), a model in training
mode, or rows whose histories differ (a general batch, not one user's ranking).

Inference only: the folded weights are taken once, at construction (the model must not
be trained afterwards), and nothing here records gradients.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from din_model.layers.activations import apply_activation
from din_model.layers.attention import DiffProductInput, LocalActivationUnit
from din_model.layers.dice import Dice
from din_model.models.din import DIN
from din_model.regularizers.filter import IdRemapModel, remap_batch
from din_model.serving.network_inputs import cut_histories, validated_inputs
from din_model.serving.network_runtime import EagerNetwork, NetworkRuntime

#: history positions x candidates scored per chunk: bounds the (chunk, L, H) hidden tensor
#: (262,144 x 80 float32 = 84 MB at the paper's sizes)
CHUNK_POSITIONS = 262_144


class KeyProjectionDIN:
    """The ranking form of one DIN in eval mode: the folded first-layer weights, taken once.

    ``model`` is a :class:`~din_model.models.din.DIN` whose activation unit is a
    :class:`~din_model.layers.attention.LocalActivationUnit` on ``diff_prod`` input,
    possibly behind the filter's id mapping (:class:`IdRemapModel`); see
    :func:`supports_key_projection` for the check.
    """

    def __init__(self, model: nn.Module) -> None:
        din, remaps = _unwrap(model)
        if din is None or not supports_key_projection(model):
            raise TypeError(
                f"the key projection needs a DIN with the diff_prod activation unit, got "
                f"{type(model).__name__}"
            )
        self.model = din
        self.remaps = remaps
        unit: LocalActivationUnit = din.attention.unit
        self.unit = unit
        self.softmax = bool(din.attention.softmax)
        layer: DiffProductInput = unit.input_layer
        with torch.no_grad():
            w_k, w_q, w_d, w_p = layer.linear.weight.split(layer.dim, dim=1)
            self.w_key_t = (w_k + w_d).t().contiguous()  # (D, H): of e_j, once per request
            self.w_product = w_p.contiguous()  # (H, D): of e_j * v_A
            self.w_query = (w_q - w_d).contiguous()  # (H, D): of v_A
            self.bias = layer.linear.bias.detach().clone()
        self.hidden = self.w_product.shape[0]
        self.device = layer.linear.weight.device
        self._buffers = threading.local()

    @torch.inference_mode()
    def logits(
        self, history: Mapping[str, Tensor], batch: Mapping[str, Tensor], chunk: int | None = None
    ) -> Tensor:
        """(N,) logits: ``history`` the sequence features of the one user, (1, W);
        ``batch`` the sparse features of the N rows (user-side ones repeated), (N,).

        ``chunk``: candidates per chunk (default: :data:`CHUNK_POSITIONS` over the
        history length).
        """
        if self.unit.training or self.model.training:
            raise RuntimeError("the ranking path is for inference: put the model in eval mode")
        din = self.model
        if self.remaps:
            history = remap_batch(dict(history), self.remaps)
            batch = remap_batch(dict(batch), self.remaps)
        # The history's valid positions (any sequence id not padding), as the forward packs them.
        mask = din.embedding.sequence_mask(history)[0]  # (W,)
        positions = mask.nonzero().squeeze(1)
        valid = {name: history[name][0, positions] for name in din.sequence_names}
        vectors = din.embedding.lookup(valid, din.sequence_names)
        keys = torch.cat([vectors[name] for name in din.sequence_names], dim=-1)  # (Lv, D)
        request = self._request_matrix(keys)  # (Lv*H, D + 1), or None for an empty history
        sparse = din.embedding.lookup(batch, din.sparse_names)
        query = torch.cat([sparse[name] for name in din.target_names], dim=-1)  # (N, D)
        rows = query.shape[0]
        step = chunk or max(1, CHUNK_POSITIONS // max(1, keys.shape[0]))
        interest = [
            self._interest(keys, request, query[start : start + step])
            for start in range(0, rows, step)
        ]
        parts = [sparse[name] for name in din.sparse_names]
        parts.append(interest[0] if len(interest) == 1 else torch.cat(interest))
        return din.mlp(torch.cat(parts, dim=1)).squeeze(-1)

    def _scratch(self, name: str, shape: tuple[int, ...] | torch.Size, like: Tensor) -> Tensor:
        """A per-thread tensor of ``shape`` reused across calls of the same shape.

        A ranking call's hidden layers are megabytes (100 candidates x 50 positions x 80
        units is 1.6 MB): allocating them afresh each call costs page faults and zeroing
        that a serving loop of same-shaped requests need not pay. Per thread, so
        concurrent requests never share a buffer; nothing returned aliases one.
        """
        buffers = self._buffers.__dict__.setdefault("tensors", {})
        tensor = buffers.get(name)
        if tensor is None or tensor.shape != tuple(shape) or tensor.dtype != like.dtype:
            tensor = like.new_empty(tuple(shape))
            buffers[name] = tensor
        return tensor

    def _request_matrix(self, keys: Tensor) -> Tensor | None:
        """M of the module doc: row (j, h) = [e_j * W_p[h] + W_qd[h], key[j, h] + b[h]]."""
        lv = keys.shape[0]
        if lv == 0:
            return None
        dim = keys.shape[1]
        request = keys.new_empty(lv, self.hidden, dim + 1)
        torch.addcmul(self.w_query, keys.unsqueeze(1), self.w_product, out=request[:, :, :dim])
        # the key projection, once per request, with the bias
        torch.addmm(self.bias, keys, self.w_key_t, out=request[:, :, dim])
        return request.view(lv * self.hidden, dim + 1)

    def _interest(self, keys: Tensor, request: Tensor | None, query: Tensor) -> Tensor:
        """(n, D) interest vectors of n candidates over the shared history's Lv positions."""
        n, lv = query.shape[0], keys.shape[0]
        if request is None:  # an empty history pools to zeros, softmax or not (as the forward)
            return keys.new_zeros(n, keys.shape[1])
        ones = query.new_ones(n, 1)
        first = self._scratch("first", (n, request.shape[0]), query)
        torch.mm(torch.cat([query, ones], dim=1), request.t(), out=first)
        hidden = first.view(n, lv, self.hidden)
        # eval mode: Dice uses its running statistics (no mask needed), dropout is off
        hidden = _activate_(
            self.unit.input_activation, hidden, self._scratch("gate", hidden.shape, query)
        )
        for depth, block in enumerate(self.unit.mlp.blocks):  # no BatchNorm (see supports_...)
            width = block.linear.out_features
            out = self._scratch(f"block{depth}", (n * lv, width), query)
            flat = hidden.reshape(n * lv, hidden.shape[-1])
            if block.linear.bias is None:
                torch.mm(flat, block.linear.weight.t(), out=out)
            else:
                torch.addmm(block.linear.bias, flat, block.linear.weight.t(), out=out)
            hidden = out.view(n, lv, width)
            gate = self._scratch(f"gate{depth}", hidden.shape, query)
            hidden = _activate_(block.activation, hidden, gate)
        scores = self.unit.mlp.output(hidden).squeeze(-1)  # (n, Lv)
        if self.softmax:  # every one of the Lv positions is valid
            scores = torch.softmax(scores, dim=1)
        return scores @ keys  # (n, D)


def dice_eval_(dice: Dice, x: Tensor, gate: Tensor | None = None) -> Tensor:
    """Dice in eval mode, in place: ``x * (alpha + (1 - alpha) * sigmoid((x - m) * s))``.

    The same function as :meth:`Dice.forward` with the running statistics, its
    per-unit constants folded (``s = 1 / sqrt(var + eps)``, shift ``-m * s``), in
    four passes over ``x`` instead of seven and without new (N, L, H) tensors. Equal up
    to float32 re-association of the normalisation (a few ulps of the sigmoid input).
    ``gate``: a scratch tensor shaped like ``x`` to reuse (one is allocated otherwise).
    """
    scale = torch.rsqrt(dice.running_var + dice.eps)
    shift = -dice.running_mean * scale
    alpha = dice.alpha.detach()
    gate = torch.addcmul(shift, x, scale, out=gate).sigmoid_()
    gate.mul_(1.0 - alpha).add_(alpha)
    return x.mul_(gate)


def _activate_(activation: nn.Module, x: Tensor, gate: Tensor | None = None) -> Tensor:
    """An eval-mode activation of the unit applied to ``x`` (Dice in place, others as called)."""
    if isinstance(activation, Dice):
        return dice_eval_(activation, x, gate)
    return apply_activation(activation, x, None)


def _unwrap(model: nn.Module) -> tuple[DIN | None, dict[str, Tensor]]:
    """(the DIN inside ``model``, the filter's id remaps) or (None, {})."""
    remaps: dict[str, Tensor] = {}
    if isinstance(model, IdRemapModel):
        remaps = model._remaps()  # the filter's id lookups, applied as its forward does
        model = model.model
    return (model, remaps) if isinstance(model, DIN) else (None, {})


def supports_key_projection(model: nn.Module) -> bool:
    """Whether ``model`` is DIN with a ``diff_prod`` :class:`LocalActivationUnit`."""
    din, _ = _unwrap(model)
    if din is None:
        return False
    unit = getattr(din.attention, "unit", None)
    return (
        type(unit) is LocalActivationUnit
        and isinstance(unit.input_layer, DiffProductInput)
        and unit.input_layer.linear.bias is not None
        and all(block.norm is None for block in unit.mlp.blocks)
    )


class RankingScorer:
    """``network.score`` for one user's N candidates, with the key projection once when it can.

    ``score(inputs)`` takes what ``network.score`` takes (N rows of encoded ids, as
    :meth:`~din_model.serving.raw_encoder.RawEncoder.encode_ranking` returns them) and
    returns the same (N,) float64 probabilities. ``uses_key_projection`` says whether
    the shortcut is on (an eager DIN with the diff_prod unit); otherwise, and for rows
    whose histories differ, it is ``network.score`` itself. ``chunk_candidates``:
    candidates scored per chunk (default: :data:`CHUNK_POSITIONS` over the history length).
    """

    def __init__(self, network: NetworkRuntime, *, chunk_candidates: int | None = None) -> None:
        self.network = network
        self.chunk_candidates = chunk_candidates
        self.ranking: KeyProjectionDIN | None = None
        if isinstance(network, EagerNetwork) and supports_key_projection(network.model):
            self.ranking = KeyProjectionDIN(network.model)

    @property
    def uses_key_projection(self) -> bool:
        return self.ranking is not None

    def score(self, inputs: Mapping[str, Any]) -> np.ndarray:
        """(N,) float64 click probabilities, in input order; InputError for bad inputs."""
        if self.ranking is None or self.network.model.training:  # type: ignore[attr-defined]
            return self.network.score(inputs)
        signature = self.network.signature
        rows, arrays = validated_inputs(inputs, signature)
        if rows == 0:
            return np.empty(0, dtype=np.float64)
        named = dict(zip(signature.names, arrays, strict=True))
        sequences = [named[name] for name in signature.sequence_names]
        if not all(_same_rows(array) for array in sequences):
            return self.network.score(inputs)  # not one user's ranking: the general path
        # The one history, cut to the training length as network_batch cuts every row.
        cut = cut_histories([array[:1] for array in sequences], signature.max_len)
        device = self.ranking.device
        history = {
            name: torch.from_numpy(array).to(device)
            for name, array in zip(signature.sequence_names, cut, strict=True)
        }
        batch = {
            spec.name: torch.from_numpy(named[spec.name]).to(device)
            for spec in signature.inputs
            if not spec.is_sequence
        }
        logits = self.ranking.logits(history, batch, self.chunk_candidates)
        with torch.inference_mode():
            return torch.sigmoid(logits.double()).cpu().numpy()


def _same_rows(array: np.ndarray) -> bool:
    """Whether every row of a (N, W) array equals the first."""
    return bool((array == array[:1]).all())


def ranking_scorer(network: NetworkRuntime) -> RankingScorer:
    """The ranking scorer of a runtime (the key projection wherever it applies)."""
    return RankingScorer(network)
