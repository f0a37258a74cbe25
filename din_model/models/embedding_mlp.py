"""BaseModel (Embedding&MLP) of the DIN paper: pool the behaviours, concatenate, MLP."""

from __future__ import annotations

import torch
from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap
from din_model.layers.pooling import POOLING_MODES, SequencePooling
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions

PACKED_POOLING = ("sum", "mean")


class EmbeddingMLP(CTRModel):
    """Behaviour sequences pooled by masked sum | mean | max (``pooling_mode``)."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        super().__init__(feature_map, options, deep_embedding(feature_map, options))
        self.pooling = SequencePooling(options.choice("pooling_mode", POOLING_MODES))
        self.mlp = output_mlp(options, self.sparse_dim + self.behaviour_dim)

    def packs_rows(self) -> bool:
        # Sums (and means) of the valid positions need no padded grid; max pooling does.
        return bool(self.sequence_names) and self.pooling.mode in PACKED_POOLING

    def forward(self, batch: Batch) -> Tensor:
        if self.packs_rows():
            return self._forward_packed(batch)
        embedded = self.embedding(batch)
        behaviour = None
        if self.sequence_names:
            behaviour = self.pooling(self.behaviour_keys(embedded), embedded.mask)
        return self.mlp(self.deep_input(embedded, behaviour)).squeeze(-1)

    def _forward_packed(self, batch: Batch) -> Tensor:
        """Look up and sum the valid behaviour positions only (same model as the padded form).

        On short histories most of a padded (B, L) grid is padding; its lookups and,
        worse, their gradients (every padded cell adds into row 0 of the table) are
        skipped.
        """
        sparse = self.embedding.lookup(batch, self.sparse_names)
        mask = self.embedding.sequence_mask(batch)
        packed = self.packed_positions(batch, mask)
        vectors = self.embedding.lookup_packed(batch, packed)
        behaviour = packed.pool(torch.cat([vectors[name] for name in self.sequence_names], -1))
        if self.pooling.mode == "mean":
            behaviour = behaviour / mask.sum(1, keepdim=True).clamp_min(1).to(behaviour.dtype)
        parts = [sparse[name] for name in self.sparse_names] + [behaviour]
        return self.mlp(torch.cat(parts, dim=1)).squeeze(-1)
