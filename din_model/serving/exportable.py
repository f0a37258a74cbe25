"""The trained network in the form that is exported: positional id tensors in, probabilities out.

Exporters trace a function of tensors, not of a dict, so :class:`ProbabilityNetwork`
takes one tensor per model feature in the feature map's order (the order of
:class:`~din_model.serving.network_inputs.NetworkSignature`) and rebuilds the
batch dict the model expects. It applies the sigmoid inside: an exported file
answers the question a consumer asks (a click probability, float32, (B,)) with
no knowledge of how the model was trained. The filter regulariser's id
remapping is part of the scoring model that
:func:`~din_model.serving.loading.model_from_payload` returns, so it is traced
along with everything else.

:func:`use_dense_form` switches the copy that is exported to the padded (dense)
form: the packed form (DIN's activation unit and sum pooling on the valid
positions only) lists those positions with ``nonzero``, a data-dependent shape.
torch.export can carry that as an unbacked size, but a graph whose shapes
follow from the input shapes alone is what every runtime and compiler (ONNX
Runtime, TensorRT, a TorchScript trace, which would freeze the packed count's
Python-side checks) handles, and the two forms compute the same model up to
float rounding (the padding's weights are exactly 0 in both).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from din_model.layers.attention import LocalActivationUnit
from din_model.models.base import CTRModel
from din_model.serving.network_inputs import NetworkSignature

OUTPUT_NAME = "probability"
# Example sizes for tracing: at least 2 (torch.export specialises sizes 0 and 1) and distinct,
# so that no equality between the batch and the history axes is ever inferred.
EXAMPLE_ROWS = 3
MIN_EXAMPLE_WIDTH = 4


def _padded_form() -> bool:
    return False


def use_dense_form(model: nn.Module) -> nn.Module:
    """Make ``model`` (in place) run the padded form of every packing layer; returns it.

    ``CTRModel.packs_rows`` is the switch each model's forward reads (DIN reads its
    unit's flag through it; sum pooling has no flag of its own), and
    ``LocalActivationUnit.packed`` the unit's own, so both are turned off.
    Only for a copy made to be exported: the eager reference keeps its form.
    """
    for module in model.modules():
        if isinstance(module, LocalActivationUnit):
            module.packed = False
        if isinstance(module, CTRModel):
            module.packs_rows = _padded_form  # an instance attribute shadows the method
    return model


class ProbabilityNetwork(nn.Module):
    """``forward(*ids)`` -> (B,) click probabilities of a scoring model (see the module doc)."""

    def __init__(self, model: nn.Module, signature: NetworkSignature) -> None:
        super().__init__()
        self.model = model
        self.input_names = signature.names

    def forward(self, *ids: Tensor) -> Tensor:
        batch = dict(zip(self.input_names, ids, strict=True))
        return torch.sigmoid(self.model(batch))


def example_inputs(signature: NetworkSignature, seed: int = 0) -> tuple[Tensor, ...]:
    """A small valid batch to trace: real ids, histories of mixed lengths, padding included."""
    rng = np.random.default_rng(seed)
    width = max(MIN_EXAMPLE_WIDTH, signature.max_len)
    if width == EXAMPLE_ROWS:
        width += 1
    lengths = np.array([0, 1, width])[:EXAMPLE_ROWS]  # empty, one event, a full history
    out = []
    for spec in signature.inputs:
        low = min(2, spec.vocab_size - 1)  # known ids start at 2 (0: padding, 1: OOV)
        if spec.is_sequence:
            ids = rng.integers(low, spec.vocab_size, size=(EXAMPLE_ROWS, width))
            ids[np.arange(width)[None, :] >= lengths[:, None]] = 0
        else:
            ids = rng.integers(low, spec.vocab_size, size=EXAMPLE_ROWS)
        out.append(torch.from_numpy(ids.astype(np.int64)))
    return tuple(out)
