"""Building a model by name: the one place training reaches into din_model.models."""

from __future__ import annotations

from typing import Any

from din_model.data.feature_map import FeatureMap
from din_model.models import CTRModel, build_model


def create_model(name: str, feature_map: FeatureMap, model_config: dict[str, Any]) -> CTRModel:
    """A freshly initialised model; seed torch first for reproducible weights."""
    return build_model(name, feature_map, model_config)
