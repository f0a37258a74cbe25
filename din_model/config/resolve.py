"""Layered configuration (RecBole style): defaults, dataset, user file, CLI overrides.

Layers, lowest first:

1. the model's defaults (the ``model:`` section of its registry file,
   ``configs/models/<model>.yaml``, see :mod:`din_model.registry.models`) merged
   with ``configs/train.yaml`` (``train`` and ``regularizer``);
2. the dataset's training defaults (the ``train:`` key of its feature spec,
   ``data/specs/<family>.yaml``, see :mod:`din_model.registry.datasets`);
3. the user's file (``--config FILE``, or a preset name such as ``paper``);
4. Python dicts (the ``config`` argument of :func:`din_model.pipeline.fit`);
5. ``--set key=value`` overrides.

With ``train.batch_size_rule: auto`` (train.yaml's default) ``train.batch_size``
is the largest batch, and a fit makes it smaller for a small training split
(:mod:`din_model.training.batch_rule`). A layer (2-5) that sets
``train.batch_size`` without ``train.batch_size_rule`` sets the rule to
``fixed``: a batch size given in a file, a preset, a dict or ``--set`` is used
as given, as it was before the rule existed.

The keys of layer 1 are the only valid keys. A key that belongs to another
model's defaults (say ``model.attention_hidden`` given to the BaseModel by the
``paper`` preset) is dropped with a warning, so that one file can serve every
model of an ablation; any other unknown key is a ConfigError that names it and
the valid keys, so a typo never silently trains with a default.

This module is the only reader of those defaults: :func:`resolve_model_section`
and :func:`resolve_regularizer_section` complete a partial section (what
``build_model`` and ``build_regularizer`` are given) by the same rules, so every
default has one home and one way in.
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

from din_model.config.files import TRAIN_DEFAULTS, load_yaml, resolve_user_config
from din_model.config.overrides import overrides_to_tree
from din_model.config.tree import deep_merge, iter_leaves, set_dotted
from din_model.errors import ConfigError
from din_model.registry import dataset_names, dataset_train_layer, model_names
from din_model.registry import model_defaults as registry_model_defaults

logger = logging.getLogger(__name__)

_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")

SECTIONS = ("model", "train", "regularizer")
# Keys that change how a run looks, not what it computes: left out of the hash
# that decides whether a checkpoint may be resumed.
NON_RESULT_KEYS = ("train.progress", "train.item_map_items")  # outputs, not the model
# Keys added after config hashes were first recorded, with the value at which a config
# means what it meant before the key existed: left out of the hash at that value, so
# the hash of an older config (a checkpoint to resume, a study) does not change.
NEUTRAL_VALUES = {"train.batch_size_rule": "fixed"}
BATCH_SIZE_RULES = ("auto", "fixed")


def model_defaults(model: str) -> dict[str, Any]:
    """The ``model`` section of the model's registry file (ConfigError for an unknown model)."""
    return registry_model_defaults(model)


def train_defaults() -> dict[str, Any]:
    """``configs/train.yaml``: the ``train`` and ``regularizer`` sections every model shares."""
    train = load_yaml(TRAIN_DEFAULTS)
    return {section: copy.deepcopy(train.get(section) or {}) for section in SECTIONS}


def base_config(model: str) -> dict[str, Any]:
    """Layer 1: the model's defaults plus the training and regulariser defaults."""
    config = train_defaults()
    config["model"] = deep_merge(config["model"], model_defaults(model))
    return config


def _model_keys_of_other_models(model: str) -> set[str]:
    keys: set[str] = set()
    for name in model_names():
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


def _dataset_layer(dataset: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Layer 2, checked against ``config``; empty for a dataset without training defaults.

    A dataset the registry does not know (prepared data of a dataset registered
    through ``$DIN_SPEC_DIRS`` when that variable is unset) adds nothing, with a
    warning: the prepared data is still trainable.
    """
    if dataset not in dataset_names():
        logger.warning(
            "dataset '%s' is not registered (known: %s): no dataset training defaults",
            dataset,
            ", ".join(dataset_names()),
        )
        return {}
    found = dataset_train_layer(dataset)
    if found is None:
        return {}
    layer, source = found
    return check_layer(layer, config, str(source))


def _settle_batch_size_rule(config: dict[str, Any], layer: Mapping[str, Any], source: str) -> None:
    """A layer's ``train.batch_size`` without a rule fixes the batch size (module doc)."""
    train = layer.get("train")
    if not isinstance(train, Mapping):
        return
    if "batch_size_rule" in train:
        rule = train["batch_size_rule"]
        if rule not in BATCH_SIZE_RULES:
            raise ConfigError(
                f"{source}: 'train.batch_size_rule' expects one of "
                f"{', '.join(BATCH_SIZE_RULES)}, got {rule!r}"
            )
    elif "batch_size" in train and "batch_size_rule" in config["train"]:
        config["train"]["batch_size_rule"] = "fixed"


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
        layer = _dataset_layer(dataset, config)
        config = deep_merge(config, layer)
        _settle_batch_size_rule(config, layer, f"dataset '{dataset}'")
    if config_file is not None:
        path = resolve_user_config(config_file)
        layer = check_layer(load_yaml(path), config, str(path), foreign_keys=foreign)
        config = deep_merge(config, layer)
        _settle_batch_size_rule(config, layer, str(path))
    for extra in layers:
        if extra:
            layer = check_layer(extra, config, "config", foreign_keys=foreign)
            config = deep_merge(config, layer)
            _settle_batch_size_rule(config, layer, "config")
    override_tree = overrides_to_tree(overrides)
    if override_tree:
        layer = check_layer(override_tree, config, "--set", foreign_keys=foreign)
        config = deep_merge(config, layer)
        _settle_batch_size_rule(config, layer, "--set")
    return config


def resolve_model_section(model: str, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """A possibly partial ``model:`` section completed with the model's defaults.

    The same rules as :func:`resolve_config`: keys of other models are dropped
    with a warning, unknown keys and wrong types are a ConfigError naming the key.
    """
    base = {"model": model_defaults(model)}
    if not section:
        return base["model"]
    layer = check_layer(
        {"model": dict(section)},
        base,
        f"model config of '{model}'",
        foreign_keys=_model_keys_of_other_models(model),
    )
    return deep_merge(base, layer)["model"]


def resolve_regularizer_section(name: str, section: Mapping[str, Any] | None) -> dict[str, Any]:
    """A possibly partial ``regularizer.<name>`` section completed from ``train.yaml``.

    Unknown keys and wrong types are a ConfigError naming the key; a regulariser
    without settings (``none``) resolves to ``{}``.
    """
    defaults = train_defaults()["regularizer"].get(name) or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{TRAIN_DEFAULTS}: regularizer.{name} must be a mapping")
    if not section:
        return copy.deepcopy(defaults)
    base = {"regularizer": {name: defaults}}
    layer = check_layer({"regularizer": {name: dict(section)}}, base, f"regularizer '{name}'")
    return deep_merge(base, layer)["regularizer"][name]


def config_hash(config: Mapping[str, Any]) -> str:
    """A stable digest of everything in ``config`` that can change a run's results."""
    trimmed = copy.deepcopy(dict(config))
    dropped = [(dotted, None) for dotted in NON_RESULT_KEYS] + list(NEUTRAL_VALUES.items())
    for dotted, neutral in dropped:
        *parents, leaf = dotted.split(".")
        node: Any = trimmed
        for part in parents:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict) and (neutral is None or node.get(leaf) == neutral):
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
