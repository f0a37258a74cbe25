"""The per-model default ``model:`` sections, kept as YAML in ``din_model/configs/models/``.

These files are the first layer of the training config (then dataset YAML, user file,
CLI overrides). :func:`resolve_model_config` merges a (possibly partial) section over
them and rejects keys that no model knows, so a typo such as ``mlp_hiden`` stops the
run instead of being silently ignored. A key that belongs to another model (say
``pooling_mode`` given to DIN through a shared preset) is ignored with a log line.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from din_model.errors import ConfigError

logger = logging.getLogger(__name__)

MODEL_CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
# Keys a config layer may carry in the model section without being a model parameter.
IGNORED_KEYS = frozenset({"name"})


def model_config_path(name: str) -> Path:
    return MODEL_CONFIG_DIR / f"{name}.yaml"


@functools.cache
def _load_defaults(name: str) -> dict[str, Any]:
    path = model_config_path(name)
    try:
        payload = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no default config for model {name!r}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'model:' section")
    return payload["model"]


def default_model_config(name: str) -> dict[str, Any]:
    """A fresh copy of the default ``model:`` section of ``name``."""
    return dict(_load_defaults(name))


def resolve_model_config(
    name: str, model_cfg: Mapping[str, Any], all_names: tuple[str, ...]
) -> dict[str, Any]:
    """Defaults of ``name`` with ``model_cfg`` on top; ConfigError for keys no model knows."""
    defaults = default_model_config(name)
    resolved = dict(defaults)
    foreign: list[str] = []
    for key, value in model_cfg.items():
        if key in defaults:
            resolved[key] = value
        elif key in IGNORED_KEYS:
            continue
        elif any(key in _load_defaults(other) for other in all_names):
            foreign.append(key)
        else:
            raise ConfigError(
                f"model.{key}: unknown key for model {name!r}; valid keys: "
                f"{', '.join(sorted(defaults))}"
            )
    if foreign:
        logger.info("model %s ignores keys of other models: %s", name, ", ".join(sorted(foreign)))
    return resolved
