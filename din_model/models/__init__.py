"""Building models: ``build_model(name, feature_map, model_cfg)`` for every registered model.

Which models exist, their classes and their default ``model:`` sections come
from the model registry (:mod:`din_model.registry.models`, one YAML per model);
``din_dice`` is the DIN class with Dice in its MLP and its activation unit (its
default config says so), ``din`` uses PReLU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from din_model.config.resolve import resolve_model_section
from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.models.base import CTRModel
from din_model.models.options import ModelOptions
from din_model.registry import model_class


def build_model(
    name: str, feature_map: FeatureMap, model_cfg: Mapping[str, Any] | None
) -> CTRModel:
    """A freshly initialised model (seed torch first for reproducible weights).

    ``model_cfg`` is the ``model:`` config section; missing keys take the model's
    registered defaults (:func:`din_model.config.resolve.resolve_model_section`).
    Unknown model names, unknown keys and bad values raise ConfigError.
    """
    cls = model_class(name)
    if not issubclass(cls, CTRModel):
        raise ConfigError(f"model {name!r}: {cls.__qualname__} is not a CTRModel subclass")
    resolved = resolve_model_section(name, model_cfg)
    return cls(feature_map, ModelOptions(name, resolved))


__all__ = ["CTRModel", "build_model"]
