"""Layered YAML configuration: model defaults, dataset, user file, ``--set`` overrides.

See :mod:`din_model.config.resolve` for the order of the layers and the rules
for unknown keys.
"""

from din_model.config.files import CONFIG_ROOT, load_yaml, resolve_user_config
from din_model.config.overrides import overrides_to_tree, parse_override
from din_model.config.resolve import (
    SECTIONS,
    base_config,
    check_layer,
    config_hash,
    dump_config,
    resolve_config,
    resolve_model_section,
    resolve_regularizer_section,
)

__all__ = [
    "CONFIG_ROOT",
    "SECTIONS",
    "base_config",
    "check_layer",
    "config_hash",
    "dump_config",
    "load_yaml",
    "overrides_to_tree",
    "parse_override",
    "resolve_config",
    "resolve_model_section",
    "resolve_regularizer_section",
    "resolve_user_config",
]
