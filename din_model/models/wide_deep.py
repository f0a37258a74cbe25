"""Wide&Deep (Cheng et al. 2016): a linear part on the raw ids plus BaseModel's tower.

The wide part takes the same ids as the deep part (no hand-made cross features, which
the DIN paper's comparison does not specify); its weights are the first-order column
of the shared embedding tables.
"""

from __future__ import annotations

from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap
from din_model.layers.linear import LINEAR_POOLING_MODES, LinearTerm
from din_model.layers.pooling import POOLING_MODES, SequencePooling
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions


class WideDeep(CTRModel):
    """logit = wide (LR) + deep (pooled Embedding&MLP)."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        embedding = deep_embedding(feature_map, options, linear_column=True)
        super().__init__(feature_map, options, embedding)
        self.wide = LinearTerm(options.choice("linear_pooling", LINEAR_POOLING_MODES))
        self.pooling = SequencePooling(options.choice("pooling_mode", POOLING_MODES))
        self.mlp = output_mlp(options, self.sparse_dim + self.behaviour_dim)

    def forward(self, batch: Batch) -> Tensor:
        embedded = self.embedding(batch)
        behaviour = None
        if self.sequence_names:
            behaviour = self.pooling(self.behaviour_keys(embedded), embedded.mask)
        deep = self.mlp(self.deep_input(embedded, behaviour)).squeeze(-1)
        return self.wide(embedded) + deep
