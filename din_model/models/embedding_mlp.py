"""BaseModel (Embedding&MLP) of the DIN paper: pool the behaviours, concatenate, MLP."""

from __future__ import annotations

from torch import Tensor

from din_model.data.feature_map import FeatureMap
from din_model.layers.pooling import POOLING_MODES, SequencePooling
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions


class EmbeddingMLP(CTRModel):
    """Behaviour sequences pooled by masked sum | mean | max (``pooling_mode``)."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        super().__init__(feature_map, options, deep_embedding(feature_map, options))
        self.pooling = SequencePooling(options.choice("pooling_mode", POOLING_MODES))
        self.mlp = output_mlp(options, self.sparse_dim + self.behaviour_dim)

    def forward(self, batch: Batch) -> Tensor:
        embedded = self.embedding(batch)
        behaviour = None
        if self.sequence_names:
            behaviour = self.pooling(self.behaviour_keys(embedded), embedded.mask)
        return self.mlp(self.deep_input(embedded, behaviour)).squeeze(-1)
