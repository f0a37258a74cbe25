"""LR: logistic regression on the same sparse ids (the paper's weakest baseline)."""

from __future__ import annotations

from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap
from din_model.layers.embedding import FeatureEmbedding
from din_model.layers.linear import LINEAR_POOLING_MODES, LinearTerm
from din_model.models.base import Batch, CTRModel
from din_model.models.options import ModelOptions


class LogisticRegression(CTRModel):
    """bias + one scalar weight per id (width-1 tables); sequences by their mean weight."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        weights_only = FeatureEmbedding(
            feature_map, dict.fromkeys(feature_map.tables, 0), linear_column=True
        )
        super().__init__(feature_map, options, weights_only)
        self.linear = LinearTerm(options.choice("linear_pooling", LINEAR_POOLING_MODES))

    def forward(self, batch: Batch) -> Tensor:
        return self.linear(self.embedding(batch))
