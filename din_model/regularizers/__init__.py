"""Regularisers compared in the DIN paper (sec. 6.5), one per module.

``build_regularizer(name, config)`` takes the name given to ``--reg`` and the
``regularizer`` config section (each regulariser reads its own subsection). A
partial subsection is completed from ``configs/train.yaml`` by the config module,
the one home of every default: the classes hold no default values.
"""

from __future__ import annotations

from typing import Any

from din_model.config.resolve import resolve_regularizer_section
from din_model.errors import ConfigError
from din_model.registry.regularizers import REGULARIZER_NAMES
from din_model.regularizers.base import Regularizer
from din_model.regularizers.difacto import DiFactoL2
from din_model.regularizers.dropout import FeatureIdDropout
from din_model.regularizers.filter import FrequencyFilter, IdRemapModel
from din_model.regularizers.l2 import DenseL2
from din_model.regularizers.mba import MiniBatchAware
from din_model.regularizers.none import NoRegularizer

REGULARIZERS: dict[str, type[Regularizer]] = {
    "none": NoRegularizer,
    "l2": DenseL2,
    "dropout": FeatureIdDropout,
    "filter": FrequencyFilter,
    "difacto": DiFactoL2,
    "mba": MiniBatchAware,
}

__all__ = ["REGULARIZERS", "REGULARIZER_NAMES", "IdRemapModel", "Regularizer", "build_regularizer"]


def build_regularizer(name: str, config: dict[str, Any] | None = None) -> Regularizer:
    """The regulariser ``name`` configured from ``config[name]`` (the regularizer section).

    Missing keys of ``config[name]`` take their ``train.yaml`` defaults; unknown
    keys and wrong types are a ConfigError naming the key.
    """
    if name not in REGULARIZERS:
        raise ConfigError(
            f"unknown regularizer '{name}'; choose one of {', '.join(REGULARIZER_NAMES)}"
        )
    section = (config or {}).get(name) or {}
    if not isinstance(section, dict):
        raise ConfigError(f"regularizer.{name} must be a mapping, got {section!r}")
    return REGULARIZERS[name](resolve_regularizer_section(name, section))
