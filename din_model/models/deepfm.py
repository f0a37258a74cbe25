"""DeepFM (Guo et al. 2017): first-order weights + FM pairwise term + MLP, one embedding.

Each behaviour sequence is one FM field, pooled with ``pooling_mode`` (``sum``: the FM
of a multi-hot field whose ids have value 1). All tables need one width.
"""

from __future__ import annotations

from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap
from din_model.layers.interactions import fm_second_order
from din_model.layers.linear import LINEAR_POOLING_MODES, LinearTerm
from din_model.layers.pooling import POOLING_MODES, SequencePooling
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions


class DeepFM(CTRModel):
    """logit = linear + FM second order + MLP(fields)."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        embedding = deep_embedding(feature_map, options, linear_column=True)
        super().__init__(feature_map, options, embedding)
        dim = self.field_dim()
        num_fields = len(self.sparse_names) + len(self.sequence_names)
        self.linear = LinearTerm(options.choice("linear_pooling", LINEAR_POOLING_MODES))
        self.pooling = SequencePooling(options.choice("pooling_mode", POOLING_MODES))
        self.mlp = output_mlp(options, num_fields * dim)

    def forward(self, batch: Batch) -> Tensor:
        embedded = self.embedding(batch)
        fields = self.field_stack(embedded, self.pooling)
        deep = self.mlp(fields.flatten(1)).squeeze(-1)
        return self.linear(embedded) + fm_second_order(fields) + deep
