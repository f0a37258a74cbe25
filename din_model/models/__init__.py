"""Model registry: ``build_model(name, feature_map, model_cfg)`` for every model name.

``din_dice`` is the DIN class with Dice in its MLP and its activation unit (its default
config says so); ``din`` uses PReLU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from din_model.data.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.models.base import CTRModel
from din_model.models.deepfm import DeepFM
from din_model.models.defaults import default_model_config, model_config_path, resolve_model_config
from din_model.models.din import DIN
from din_model.models.embedding_mlp import EmbeddingMLP
from din_model.models.lr import LogisticRegression
from din_model.models.options import ModelOptions
from din_model.models.pnn import PNN
from din_model.models.wide_deep import WideDeep
from din_model.names import MODEL_NAMES

_MODEL_CLASSES: dict[str, type[CTRModel]] = {
    "lr": LogisticRegression,
    "base": EmbeddingMLP,
    "wide_deep": WideDeep,
    "pnn": PNN,
    "deepfm": DeepFM,
    "din": DIN,
    "din_dice": DIN,
}


def build_model(name: str, feature_map: FeatureMap, model_cfg: Mapping[str, Any]) -> CTRModel:
    """A freshly initialised model (seed torch first for reproducible weights).

    ``model_cfg`` is the ``model:`` config section; missing keys take the defaults of
    ``din_model/configs/models/<name>.yaml``. Unknown model names, unknown keys and bad
    values raise ConfigError.
    """
    if name not in _MODEL_CLASSES:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(MODEL_NAMES)}")
    resolved = resolve_model_config(name, model_cfg or {}, MODEL_NAMES)
    return _MODEL_CLASSES[name](feature_map, ModelOptions(name, resolved))


__all__ = [
    "DIN",
    "MODEL_NAMES",
    "PNN",
    "CTRModel",
    "DeepFM",
    "EmbeddingMLP",
    "LogisticRegression",
    "WideDeep",
    "build_model",
    "default_model_config",
    "model_config_path",
]
