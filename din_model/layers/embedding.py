"""Embedding tables built from the FeatureMap, one ``nn.Embedding`` per table.

Features that share a table (``hist_item_id`` and ``item_id``) look up the same
``nn.Embedding``, as in the DIN paper, so a behaviour and the candidate ad live in one
space. Row 0 is padding (``padding_idx``): it starts at zero and never receives a
gradient, and pooling masks it anyway.

Models with a first-order (LR) part get one extra column per table for the per-id
scalar weight instead of a second table: the contract stays "one table per vocabulary"
(what ``CTRModel.embedding_tables`` returns and what MBA regularises), and the weight
and the vector of an id come out of a single lookup.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.layers.packing import PackedPositions
from din_model.layers.pooling import sequence_mask


def resolve_embedding_dims(
    feature_map: FeatureMap, default_dim: int, overrides: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Table name -> embedding width: ``default_dim`` unless ``overrides`` names the table."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(feature_map.tables))
    if unknown:
        raise ConfigError(
            f"model.embedding_dims names unknown tables {unknown}: "
            f"the feature map has {sorted(feature_map.tables)}"
        )
    dims = {}
    for table in feature_map.tables:
        dim = overrides.get(table, default_dim)
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(
                f"model.embedding_dims[{table!r}]: expected a positive integer, got {dim!r}"
            )
        dims[table] = dim
    return dims


def _ids(batch: Mapping[str, Tensor], name: str) -> Tensor:
    try:
        return batch[name]
    except KeyError:
        raise ConfigError(
            f"the batch has no input {name!r}, which the feature map declares; "
            f"batch keys: {sorted(batch)}"
        ) from None


@dataclass
class EmbeddedBatch:
    """The embedded inputs of one batch, by feature name.

    ``sparse``: (B, d) vectors; ``sequences``: (B, L, d) vectors; ``mask``: (B, L) valid
    positions (None without sequence features). ``sparse_weights`` / ``sequence_weights``
    hold the first-order weights, (B,) and (B, L), for models with a linear part.
    """

    sparse: dict[str, Tensor]
    sequences: dict[str, Tensor]
    mask: Tensor | None
    sparse_weights: dict[str, Tensor] = field(default_factory=dict)
    sequence_weights: dict[str, Tensor] = field(default_factory=dict)


class FeatureEmbedding(nn.Module):
    """All embedding tables of a model, and the lookup of every model input of a batch.

    A behaviour position is valid when any of its sequence ids is not padding. Prepared
    data aligns the sequences of a row, so this is the common length; when one id of a
    position is discarded (feature-id dropout sets it to 0), the position stays and that
    id contributes its all-zero padding row, exactly as if the id alone were dropped.
    """

    def __init__(
        self,
        feature_map: FeatureMap,
        dims: Mapping[str, int],
        *,
        init_std: float = 1e-4,
        linear_column: bool = False,
    ) -> None:
        super().__init__()
        self.linear_column = linear_column
        extra = 1 if linear_column else 0
        self.dims = {table: int(dims[table]) for table in feature_map.tables}
        self.tables = nn.ModuleDict()
        for name, spec in feature_map.tables.items():
            width = self.dims[name] + extra
            table = nn.Embedding(spec.vocab_size, width, padding_idx=spec.padding_id)
            with torch.no_grad():
                table.weight.normal_(0.0, init_std)
                if linear_column:
                    table.weight[:, -1].zero_()  # LR starts from the bias alone
                table.weight[spec.padding_id].zero_()
            self.tables[name] = table
        self.feature_table = {f.name: f.table for f in feature_map.features}
        self.sparse_names = [f.name for f in feature_map.sparse_features]
        self.sequence_names = [f.name for f in feature_map.sequence_features]
        self._padding_id = {name: spec.padding_id for name, spec in feature_map.tables.items()}

    def dim(self, feature: str) -> int:
        """Width of a feature's vector (without the first-order column)."""
        return self.dims[self.feature_table[feature]]

    def table_of(self, feature: str) -> nn.Embedding:
        return self.tables[self.feature_table[feature]]

    def forward(self, batch: Mapping[str, Tensor]) -> EmbeddedBatch:
        sparse, sparse_w = self._lookup_all(batch, self.sparse_names)
        sequences, sequence_w = self._lookup_all(batch, self.sequence_names)
        return EmbeddedBatch(sparse, sequences, self.sequence_mask(batch), sparse_w, sequence_w)

    def sequence_mask(self, batch: Mapping[str, Tensor]) -> Tensor | None:
        """(B, L) valid behaviour positions (any sequence id not padding); None without any."""
        mask = None
        for name in self.sequence_names:
            valid = sequence_mask(_ids(batch, name), self._padding_id[self.feature_table[name]])
            mask = valid if mask is None else mask | valid
        return mask

    def lookup(self, batch: Mapping[str, Tensor], names: list[str]) -> dict[str, Tensor]:
        """The vectors (first-order column dropped) of the features ``names``."""
        return self._lookup_all(batch, names)[0]

    def lookup_packed(
        self, batch: Mapping[str, Tensor], packed: PackedPositions
    ) -> dict[str, Tensor]:
        """Sequence feature -> (N, d) vectors of the packed positions only.

        The ids are gathered first and only they are looked up, so neither the padded
        (B, L, d) tensor nor its gradient is ever built. Filler rows (a capacity) get
        the padding id, whose row is zero.
        """
        vectors = {}
        for name in self.sequence_names:
            table = self.feature_table[name]
            ids = packed.gather(batch[name], fill=self._padding_id[table])
            full = self.tables[table](ids)
            vectors[name] = full[..., :-1] if self.linear_column else full
        return vectors

    def _lookup_all(
        self, batch: Mapping[str, Tensor], names: list[str]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        vectors: dict[str, Tensor] = {}
        weights: dict[str, Tensor] = {}
        for name in names:
            full = self.table_of(name)(_ids(batch, name))
            if self.linear_column:
                vectors[name] = full[..., :-1]
                weights[name] = full[..., -1]
            else:
                vectors[name] = full
        return vectors, weights

    def ids_by_table(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Table name -> 1-D ids the batch looks up in it (all features, padding included).

        What a batch-aware regulariser (MBA) needs to find the rows a batch touched.
        """
        grouped: dict[str, list[Tensor]] = {}
        for name in self.sparse_names + self.sequence_names:
            grouped.setdefault(self.feature_table[name], []).append(batch[name].reshape(-1))
        return {table: torch.cat(parts) for table, parts in grouped.items()}
