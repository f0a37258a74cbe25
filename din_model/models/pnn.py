"""PNN (Qu et al. 2016): field vectors plus their products feed the MLP.

``product_type: inner`` (IPNN) adds every pairwise inner product; ``outer`` (OPNN) adds
the outer product of the field sum (the paper's superposition form). Each behaviour
sequence is one field, pooled with ``pooling_mode``. All tables need one width.
"""

from __future__ import annotations

from torch import Tensor, cat

from din_model.data.specs.feature_map import FeatureMap
from din_model.layers.interactions import InnerProduct, OuterProduct
from din_model.layers.pooling import POOLING_MODES, SequencePooling
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions

PRODUCT_TYPES = ("inner", "outer")


class PNN(CTRModel):
    """MLP over [fields, products(fields)]."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        super().__init__(feature_map, options, deep_embedding(feature_map, options))
        dim = self.field_dim()
        num_fields = len(self.sparse_names) + len(self.sequence_names)
        self.pooling = SequencePooling(options.choice("pooling_mode", POOLING_MODES))
        if options.choice("product_type", PRODUCT_TYPES) == "inner":
            self.product = InnerProduct(num_fields)
        else:
            self.product = OuterProduct(dim)
        self.mlp = output_mlp(options, num_fields * dim + self.product.out_features)

    def forward(self, batch: Batch) -> Tensor:
        fields = self.field_stack(self.embedding(batch), self.pooling)
        return self.mlp(cat([fields.flatten(1), self.product(fields)], dim=1)).squeeze(-1)
