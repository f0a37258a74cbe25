"""Frequency filter, the DIN paper's "Filter" comparison.

Only the ``top_k`` most frequent goods ids of the training split keep their
own embedding row; every other id is mapped to the OOV id 1 in training AND
at evaluation, so the model never sees a rare id's row. Ties at the cut are
broken by the smaller id, so the kept set is deterministic.

The id mapping is part of the trained model: :meth:`inference_model` wraps the
model so that checkpoint scoring and exported models apply it too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from din_model.data.specs.feature_map import FIRST_KNOWN_ID, OOV_ID, FeatureMap
from din_model.errors import ConfigError
from din_model.regularizers.base import (
    Regularizer,
    features_of_table,
    id_frequencies,
    resolve_tables,
)

if TYPE_CHECKING:  # the training package imports the regularisers
    from din_model.tensors.split import SplitTensors


def remap_batch(
    batch: dict[str, torch.Tensor], remaps: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Replace the ids of the features in ``remaps`` through their lookup tensor."""
    out = dict(batch)
    for name, lookup in remaps.items():
        if name in batch:
            out[name] = lookup[batch[name]]
    return out


class IdRemapModel(nn.Module):
    """A trained model behind the filter's id mapping, with the model's public methods."""

    def __init__(self, model: nn.Module, remaps: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.model = model
        self._features = list(remaps)
        for index, name in enumerate(self._features):
            self.register_buffer(f"remap_{index}", remaps[name].clone())

    def _remaps(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"remap_{i}") for i, name in enumerate(self._features)}

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(remap_batch(batch, self._remaps()))

    def embedding_tables(self) -> dict[str, nn.Embedding]:
        return self.model.embedding_tables()

    def attention_weights(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.attention_weights(remap_batch(batch, self._remaps()))


class FrequencyFilter(Regularizer):
    name = "filter"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.top_k = self.setting("top_k")
        self.keep_fraction = float(self.setting("keep_fraction"))
        if self.top_k is None and not 0.0 < self.keep_fraction <= 1.0:
            raise ConfigError(
                f"regularizer.filter.keep_fraction must be in (0, 1], got {self.keep_fraction}"
            )
        if self.top_k is not None and int(self.top_k) < 1:
            raise ConfigError(f"regularizer.filter.top_k must be >= 1, got {self.top_k}")
        self.remaps: dict[str, torch.Tensor] = {}
        self.kept: dict[str, int] = {}

    def prepare(self, train: SplitTensors, feature_map: FeatureMap, model: nn.Module) -> None:
        self.remaps = {}
        for table in resolve_tables(self.setting("tables"), feature_map):
            counts = id_frequencies(train, feature_map, table)
            counts[:FIRST_KNOWN_ID] = 0  # padding and OOV are never "kept" ids
            seen = int((counts > 0).sum())
            k = int(self.top_k) if self.top_k is not None else round(self.keep_fraction * seen)
            k = max(1, min(k, seen))
            # Stable sort of -count: the most frequent first, smaller id first on ties.
            order = torch.sort(-counts, stable=True).indices[:k]
            lookup = torch.full_like(counts, OOV_ID)
            lookup[:FIRST_KNOWN_ID] = torch.arange(FIRST_KNOWN_ID)
            lookup[order] = order
            self.kept[table] = k
            for name in features_of_table(feature_map, table):
                self.remaps[name] = lookup

    def transform_batch(
        self, batch: dict[str, torch.Tensor], training: bool
    ) -> dict[str, torch.Tensor]:
        return remap_batch(batch, self.remaps)

    def state_dict(self) -> dict[str, Any]:
        return {"remaps": {name: t.cpu() for name, t in self.remaps.items()}, "kept": self.kept}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.remaps = dict(state.get("remaps", {}))
        self.kept = dict(state.get("kept", {}))

    def inference_model(self, model: nn.Module) -> nn.Module:
        if not self.remaps:
            return model
        device = next(model.parameters()).device
        return IdRemapModel(model, {k: v.to(device) for k, v in self.remaps.items()})

    def to(self, device: torch.device) -> FrequencyFilter:
        self.remaps = {name: t.to(device) for name, t in self.remaps.items()}
        return self

    def describe(self) -> str:
        return f"filter(kept={self.kept})"
