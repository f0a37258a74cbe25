"""DIN (Zhou et al., KDD 2018): BaseModel whose behaviour pooling is attention.

The user's interest vector is sum_j a(e_j, v_A) e_j, where e_j are the behaviour
embeddings (item and category side by side) and v_A the candidate's embeddings of the
same tables. ``din`` uses PReLU, ``din_dice`` Dice (config defaults); everything else is
the same class.

With ``attention_packed`` (the default) only the valid behaviour positions are looked
up, scored and pooled (:mod:`din_model.layers.packing`): the padded (B, L, D) tensor of
the histories and its gradient never exist, which on short histories (Amazon: 5.5 of
up to 100) is most of the work of the padded form.
"""

from __future__ import annotations

import torch
from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.layers.activations import ACTIVATIONS
from din_model.layers.attention import ATTENTION_INPUTS, AttentionPooling, LocalActivationUnit
from din_model.layers.packing import pack_positions
from din_model.models.base import Batch, CTRModel, deep_embedding, output_mlp
from din_model.models.options import ModelOptions


class DIN(CTRModel):
    """Embedding -> attention pooling of the behaviours -> MLP."""

    def __init__(self, feature_map: FeatureMap, options: ModelOptions) -> None:
        super().__init__(feature_map, options, deep_embedding(feature_map, options))
        if not self.sequence_names:
            raise ConfigError(
                f"model {options.model} needs behaviour sequences; feature map "
                f"{feature_map.dataset!r} has none"
            )
        unit = LocalActivationUnit(
            self.behaviour_dim,
            options.int_list("attention_hidden", allow_empty=False),
            options.choice("attention_activation", ACTIVATIONS),
            input_mode=options.choice("attention_input", ATTENTION_INPUTS),
            dropout=options.probability("attention_dropout"),
            packed=options.boolean("attention_packed"),
        )
        self.attention = AttentionPooling(unit, softmax=options.boolean("attention_softmax"))
        self.mlp = output_mlp(options, self.sparse_dim + self.behaviour_dim)

    def packs_rows(self) -> bool:
        # A replaced unit (tests, ablations) may only offer the dense interface.
        return bool(getattr(self.attention.unit, "packed", False))

    def forward(self, batch: Batch) -> Tensor:
        if self.packs_rows():
            return self._forward_packed(batch)
        embedded = self.embedding(batch)
        keys, query = self.behaviour_keys(embedded), self.behaviour_query(embedded)
        interest = self.attention(keys, query, embedded.mask)
        return self.mlp(self.deep_input(embedded, interest)).squeeze(-1)

    def _forward_packed(self, batch: Batch) -> Tensor:
        """Embed, score and pool the valid behaviour positions only (same model as dense)."""
        sparse = self.embedding.lookup(batch, self.sparse_names)
        query = torch.cat([sparse[name] for name in self.target_names], dim=-1)
        mask = self.embedding.sequence_mask(batch)
        packed = self.packed_positions(batch, mask)
        vectors = self.embedding.lookup_packed(batch, packed)
        rows = torch.cat([vectors[name] for name in self.sequence_names], dim=-1)
        interest = self.attention.pool_rows(rows, query, packed, mask)
        parts = [sparse[name] for name in self.sparse_names] + [interest]
        return self.mlp(torch.cat(parts, dim=1)).squeeze(-1)

    def attention_weights(self, batch: Batch) -> Tensor:
        """(B, L) activation weight of each behaviour, exactly 0 at padded positions.

        The weights the forward pass uses (after the softmax when it is on), for the
        paper's Fig. 5-style plot. Call it under ``torch.no_grad()`` in eval mode to
        read the trained model (in train mode Dice would update its moving averages).
        """
        if self.packs_rows():
            sparse = self.embedding.lookup(batch, self.target_names)
            query = torch.cat([sparse[name] for name in self.target_names], dim=-1)
            mask = self.embedding.sequence_mask(batch)
            packed = pack_positions(mask)
            vectors = self.embedding.lookup_packed(batch, packed)
            rows = torch.cat([vectors[name] for name in self.sequence_names], dim=-1)
            return packed.scatter(self.attention.row_weights(rows, query, packed, mask))
        embedded = self.embedding(batch)
        keys, query = self.behaviour_keys(embedded), self.behaviour_query(embedded)
        return self.attention.weights(keys, query, embedded.mask)
