"""The interface every regulariser implements, and the id statistics they share.

A regulariser can act at three points of a training step:

* :meth:`Regularizer.prepare` once, before training, with the training split
  (id frequencies, kept-id sets);
* :meth:`Regularizer.transform_batch` on each batch, before the model sees it
  (feature-id dropout, filtering);
* :meth:`Regularizer.penalty` after the forward pass, added to the loss (L2
  variants).

What a trained model needs at inference time (the filter's id remapping) is
kept in :meth:`state_dict` and re-applied by :meth:`inference_model`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError

if TYPE_CHECKING:  # the training package imports the regularisers
    from din_model.tensors.split import SplitTensors


class Regularizer:
    """No-op base: subclasses override the hooks they need."""

    name = "none"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def setting(self, key: str) -> Any:
        """A value of this regulariser's section, which :func:`build_regularizer` completes.

        No default lives here: they are in ``configs/train.yaml``, and a missing
        key means the section did not go through the config module.
        """
        if key not in self.config:
            raise ConfigError(
                f"regularizer.{self.name}.{key} is missing; its default belongs in "
                "din_model/configs/train.yaml (build regularisers with build_regularizer)"
            )
        return self.config[key]

    def prepare(self, train: SplitTensors, feature_map: FeatureMap, model: nn.Module) -> None:
        """Compute what the regulariser needs from the training split (once per run)."""

    def transform_batch(
        self, batch: dict[str, torch.Tensor], training: bool
    ) -> dict[str, torch.Tensor]:
        return batch

    def penalty(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A scalar added to the batch loss, or None when there is none."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What inference needs to reproduce training's view of the ids."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (used when loading a checkpoint)."""

    def inference_model(self, model: nn.Module) -> nn.Module:
        """The model as it must be used for scoring (identity unless ids are remapped)."""
        return model

    def to(self, device: torch.device) -> Regularizer:
        """Move any tensors the regulariser holds to ``device``."""
        return self

    def describe(self) -> str:
        return self.name


def resolve_tables(requested: list[str] | str | None, feature_map: FeatureMap) -> list[str]:
    """The embedding tables a regulariser acts on; ``None`` means the goods (item) table.

    The goods table is the table of the feature ``item_id``, or else of the
    ad-group target that the first behaviour sequence is compared with.
    """
    if requested is None:
        names = {f.name: f for f in feature_map.features}
        if "item_id" in names:
            return [names["item_id"].table]
        for spec in feature_map.sequence_features:
            return [spec.table]
        ad = feature_map.group("ad")
        if ad:
            return [ad[0].table]
        raise ConfigError("no goods/item table in feature_map.json; set regularizer.*.tables")
    tables = [requested] if isinstance(requested, str) else list(requested)
    for table in tables:
        if table not in feature_map.tables:
            raise ConfigError(
                f"regularizer tables: unknown table '{table}'; "
                f"tables of this dataset: {', '.join(feature_map.tables)}"
            )
    return tables


def features_of_table(feature_map: FeatureMap, table: str) -> list[str]:
    """Every feature (sparse and sequence) that looks its ids up in ``table``."""
    return [f.name for f in feature_map.features if f.table == table]


def id_frequencies(train: SplitTensors, feature_map: FeatureMap, table: str) -> torch.Tensor:
    """n_j: how often id j occurs in the training split, over every feature of ``table``.

    An id counts once per occurrence, as the candidate or inside a history.
    Padding (id 0) is never counted.
    """
    vocab = feature_map.tables[table].vocab_size
    counts = torch.zeros(vocab, dtype=torch.int64)
    features = train.features
    for name in features_of_table(feature_map, table):
        ids = features[name].reshape(-1).to("cpu", torch.int64)
        counts += torch.bincount(ids, minlength=vocab)
    counts[0] = 0
    return counts


def embedding_table(model: nn.Module, table: str) -> nn.Embedding:
    """The model's embedding for ``table``; a ConfigError when the model has none."""
    tables = model.embedding_tables()
    if table not in tables:
        raise ConfigError(
            f"the model has no embedding table '{table}' to regularise; "
            f"its tables: {', '.join(tables) or 'none'}"
        )
    return tables[table]


def batch_unique_ids(batch: dict[str, torch.Tensor], features: list[str]) -> torch.Tensor:
    """Sorted distinct non-padding ids of ``features`` in the batch (cost ~ batch size)."""
    ids = torch.cat([batch[name].reshape(-1) for name in features])
    unique = torch.unique(ids)
    return unique[unique != 0]
