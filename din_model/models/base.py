"""CTRModel: what every model of the registry is and offers to the trainer.

A model holds the FeatureMap and one embedding table per vocabulary, takes a batch
(dict feature name -> LongTensor: sparse (B,), sequences (B, L) right-padded with 0;
other keys such as ``label`` or ``user_id`` are ignored) and returns one logit per
sample, (B,) float32. The trainer applies the sigmoid (BCE with logits).

Subclasses are short: they pick layers from :mod:`din_model.layers` and say how the
embedded fields are combined, in the FuxiCTR manner.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.layers.activations import ACTIVATIONS
from din_model.layers.embedding import EmbeddedBatch, FeatureEmbedding, resolve_embedding_dims
from din_model.layers.mlp import MLP
from din_model.layers.packing import PACKED_ROWS_KEY, PackedPositions, pack_positions
from din_model.layers.pooling import SequencePooling
from din_model.models.options import ModelOptions

Batch = Mapping[str, Tensor]


class CTRModel(nn.Module):
    """Base of every CTR model: FeatureMap, embedding collection, ``forward(batch) -> (B,)``."""

    def __init__(
        self, feature_map: FeatureMap, options: ModelOptions, embedding: FeatureEmbedding
    ) -> None:
        super().__init__()
        self.feature_map = feature_map
        self.model_name = options.model
        self.model_config: dict[str, Any] = dict(options.values)
        self.embedding = embedding
        self.sparse_names = [f.name for f in feature_map.sparse_features]
        self.sequence_names = [f.name for f in feature_map.sequence_features]
        self.target_names = [f.target for f in feature_map.sequence_features]
        self.packed_capacity: int | None = None

    def forward(self, batch: Batch) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- what the trainer and the regularisers use ---------------------------------
    def packs_rows(self) -> bool:
        """Whether the forward pass packs the valid behaviour positions (DIN, sum pooling)."""
        return False

    def set_packed_capacity(self, capacity: int | None) -> bool:
        """Pad the packed behaviour positions of every batch to ``capacity`` rows.

        None (the default) packs each batch to its own size. The trainer's
        fixed-shape mode (CUDA graphs) sets a capacity, which must be at least the
        valid positions of any batch. Returns whether this model packs at all
        (the others have shapes fixed by the batch already).
        """
        self.packed_capacity = capacity
        return self.packs_rows()

    def packed_positions(self, batch: Batch, mask: Tensor) -> PackedPositions:
        """The batch's valid positions, packed to the capacity, the batch's count or exactly."""
        capacity = self.packed_capacity
        if capacity is None and PACKED_ROWS_KEY in batch:
            capacity = int(batch[PACKED_ROWS_KEY])  # a CPU scalar: no device read-back
        return pack_positions(mask, capacity)

    def embedding_tables(self) -> dict[str, nn.Embedding]:
        """Table name (as in ``feature_map.tables``) -> its ``nn.Embedding``."""
        return dict(self.embedding.tables.items())

    def ids_by_table(self, batch: Batch) -> dict[str, Tensor]:
        """Table name -> the batch's ids in it, flattened, padding included."""
        return self.embedding.ids_by_table(batch)

    # -- helpers for the subclasses ------------------------------------------------
    @property
    def sparse_dim(self) -> int:
        return sum(self.embedding.dim(name) for name in self.sparse_names)

    @property
    def behaviour_dim(self) -> int:
        """Width of one behaviour position: its sequence features' vectors side by side."""
        return sum(self.embedding.dim(name) for name in self.sequence_names)

    def behaviour_keys(self, embedded: EmbeddedBatch) -> Tensor:
        """e_j for every position: (B, L, behaviour_dim)."""
        return torch.cat([embedded.sequences[name] for name in self.sequence_names], dim=-1)

    def behaviour_query(self, embedded: EmbeddedBatch) -> Tensor:
        """v_A: the candidate's vectors of the sequences' targets, (B, behaviour_dim)."""
        return torch.cat([embedded.sparse[name] for name in self.target_names], dim=-1)

    def deep_input(self, embedded: EmbeddedBatch, behaviour: Tensor | None) -> Tensor:
        """Every sparse vector plus the pooled behaviour vector, concatenated: the MLP input."""
        parts = [embedded.sparse[name] for name in self.sparse_names]
        if behaviour is not None:
            parts.append(behaviour)
        return torch.cat(parts, dim=1)

    def field_stack(self, embedded: EmbeddedBatch, pooling: SequencePooling) -> Tensor:
        """Fields for FM/PNN: sparse vectors and each pooled sequence, (B, F, D)."""
        fields = [embedded.sparse[name] for name in self.sparse_names]
        fields += [pooling(embedded.sequences[name], embedded.mask) for name in self.sequence_names]
        return torch.stack(fields, dim=1)

    def field_dim(self) -> int:
        """The common width of all fields; ConfigError when the tables' widths differ."""
        dims = {name: self.embedding.dim(name) for name in self.sparse_names + self.sequence_names}
        if len(set(dims.values())) != 1:
            raise ConfigError(
                f"model {self.model_name} multiplies field embeddings pairwise and needs one "
                f"width for every table; got {dims} (drop model.embedding_dims overrides)"
            )
        return next(iter(dims.values()))

    def extra_repr(self) -> str:
        return f"model={self.model_name}"


def deep_embedding(
    feature_map: FeatureMap, options: ModelOptions, *, linear_column: bool = False
) -> FeatureEmbedding:
    """The embedding tables of a deep model, widths from ``embedding_dim(s)``."""
    dims = resolve_embedding_dims(
        feature_map, options.positive_int("embedding_dim"), options.mapping("embedding_dims")
    )
    return FeatureEmbedding(
        feature_map,
        dims,
        init_std=options.positive_float("embedding_init_std"),
        linear_column=linear_column,
    )


def output_mlp(options: ModelOptions, in_features: int) -> MLP:
    """The output tower (``mlp_hidden``, ``activation``, ...) ending in one logit."""
    return MLP(
        in_features,
        options.int_list("mlp_hidden"),
        options.choice("activation", ACTIVATIONS),
        dropout=options.probability("dropout"),
        batch_norm=options.boolean("batch_norm"),
        output_dim=1,
    )
