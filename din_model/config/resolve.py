"""Layered configuration (RecBole style): defaults, dataset, user file, CLI overrides.

Layers, lowest first:

1. the model's default YAML (``configs/models/<model>.yaml``, the ``model``
   section) merged with ``configs/train.yaml`` (``train`` and ``regularizer``);
2. the dataset YAML (``configs/datasets/<dataset>.yaml``);
3. the user's file (``--config FILE``, or a preset name such as ``paper``);
4. Python dicts (the ``config`` argument of :func:`din_model.training.fit`);
5. ``--set key=value`` overrides.

The keys of layer 1 are the only valid keys. A key that belongs to another
model's defaults (say ``model.attention_hidden`` given to the BaseModel by the
``paper`` preset) is dropped with a warning, so that one file can serve every
model of an ablation; any other unknown key is a ConfigError that names it and
the valid keys, so a typo never silently trains with a default.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from din_model.config.files import (
    DATASETS_DIR,
    MODELS_DIR,
    TRAIN_DEFAULTS,
    available,
    load_yaml,
    resolve_user_config,
)
from din_model.config.overrides import overrides_to_tree
from din_model.config.tree import deep_merge, iter_leaves, set_dotted
from din_model.errors import ConfigError
from din_model.names import MODEL_NAMES

logger = logging.getLogger(__name__)

_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

SECTIONS = ("model", "train", "regularizer")
# Keys that change how a run looks, not what it computes: left out of the hash
# that decides whether a checkpoint may be resumed.
NON_RESULT_KEYS = ("train.progress",)


def model_defaults(model: str) -> dict[str, Any]:
    """The ``model`` section of ``configs/models/<model>.yaml``."""
    path = MODELS_DIR / f"{model}.yaml"
    if model not in MODEL_NAMES and not path.is_file():
        raise ConfigError(f"unknown model '{model}'; choose one of {', '.join(MODEL_NAMES)}")
    if not path.is_file():
        raise ConfigError(f"{path}: the default config of model '{model}' is missing")
    payload = load_yaml(path)
    section = payload.get("model", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a 'model' mapping")
    return section


def base_config(model: str) -> dict[str, Any]:
    """Layer 1: the model's defaults plus the training and regulariser defaults."""
    train = load_yaml(TRAIN_DEFAULTS)
    config = {section: copy.deepcopy(train.get(section) or {}) for section in SECTIONS}
    config["model"] = deep_merge(config["model"], model_defaults(model))
    return config


def _model_keys_of_other_models(model: str) -> set[str]:
    keys: set[str] = set()
    for name in available(MODELS_DIR):
        if name != model:
            keys.update(f"model.{k}" for k, _ in iter_leaves(model_defaults(name)))
    return keys


def _coerce(key: str, value: Any, default: Any, source: str) -> Any:
    """Check ``value`` against the type of the default it replaces.

    YAML 1.1 reads ``1e-3`` as a string, so numeric strings are converted
    where the default is a number; ``None`` is always accepted (it unsets an
    optional setting, and the consumer rejects it where it makes no sense).
    """
    if value is None:
        return value
    if default is None:
        # Optional settings (null by default): only repair YAML 1.1's "1e-3" strings.
        if isinstance(value, str) and _SCIENTIFIC.match(value):
            return float(value)
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int | float):
        number = value
        if isinstance(number, str):
            with contextlib.suppress(ValueError):
                number = float(number)
        if isinstance(number, int | float) and not isinstance(number, bool):
            if isinstance(default, float):
                return float(number)
            if float(number).is_integer():
                return int(number)
    elif isinstance(default, str | list | dict):
        if isinstance(value, type(default)):
            return value
    else:
        return value
    raise ConfigError(
        f"{source}: '{key}' expects {type(default).__name__} like {default!r}, got {value!r}"
    )


def _valid_keys_message(key: str, valid: Iterable[str]) -> str:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    section = key.split(".")[0]
    same_section = [k for k in valid if k.split(".")[0] == section] or valid
    return f"unknown config key '{key}'{hint}; valid keys: {', '.join(same_section)}"


def check_layer(
    layer: Mapping[str, Any],
    base: Mapping[str, Any],
    source: str,
    *,
    foreign_keys: set[str] | None = None,
) -> dict[str, Any]:
    """The part of ``layer`` that applies on top of ``base``, type-checked.

    ``foreign_keys`` are keys that are valid for another model: they are
    dropped with a warning instead of rejected.
    """
    defaults = dict(iter_leaves(base))
    free_form = {k for k, v in defaults.items() if isinstance(v, dict)}
    checked: dict[str, Any] = {}
    for key, value in iter_leaves(layer):
        if key in defaults:
            set_dotted(checked, key, _coerce(key, value, defaults[key], source))
        elif any(key.startswith(prefix + ".") for prefix in free_form):
            set_dotted(checked, key, value)
        elif foreign_keys and key in foreign_keys:
            logger.warning("%s: '%s' does not apply to this model; ignored", source, key)
        else:
            raise ConfigError(f"{source}: {_valid_keys_message(key, defaults)}")
    return checked


def resolve_config(
    model: str,
    dataset: str | None = None,
    *,
    config_file: str | Path | None = None,
    layers: Iterable[Mapping[str, Any] | None] = (),
    overrides: Iterable[str] = (),
) -> dict[str, Any]:
    """Merge the layers described in the module docstring into one config dict."""
    config = base_config(model)
    foreign = _model_keys_of_other_models(model)

    if dataset is not None:
        dataset_file = DATASETS_DIR / f"{dataset}.yaml"
        if dataset_file.is_file():
            layer = check_layer(load_yaml(dataset_file), config, str(dataset_file))
            config = deep_merge(config, layer)
        else:
            logger.debug("no dataset config at %s", dataset_file)
    if config_file is not None:
        path = resolve_user_config(config_file)
        layer = check_layer(load_yaml(path), config, str(path), foreign_keys=foreign)
        config = deep_merge(config, layer)
    for extra in layers:
        if extra:
            layer = check_layer(extra, config, "config", foreign_keys=foreign)
            config = deep_merge(config, layer)
    override_tree = overrides_to_tree(overrides)
    if override_tree:
        layer = check_layer(override_tree, config, "--set", foreign_keys=foreign)
        config = deep_merge(config, layer)
    return config


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable digest of everything in ``config`` that can change a run's results."""
    trimmed = copy.deepcopy(dict(config))
    for dotted in NON_RESULT_KEYS:
        *parents, leaf = dotted.split(".")
        node: Any = trimmed
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    canonical = json.dumps(trimmed, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class _ConfigDumper(yaml.SafeDumper):
    """Block style for sections, flow style for lists (``mlp_hidden: [200, 80]``)."""


_ConfigDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)


def dump_config(config: Mapping[str, Any], header: str | None = None) -> str:
    """The YAML text of a resolved config (sections in their canonical order)."""
    ordered = {s: config[s] for s in SECTIONS if s in config}
    ordered.update({k: v for k, v in config.items() if k not in ordered})
    text = yaml.dump(ordered, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return text
