"""Search spaces of ``din tune``: YAML files that map each tuned parameter to one config key.

A space file (``din_model/configs/tuning/<name>.yaml``, or the user's own file)::

    sampler: tpe            # tpe (Optuna's TPESampler, seeded) | grid (every combination)
    pruner:                 # optional; this is the default
      name: median          # median | threshold | none
      startup_trials: 5     # median: trials that finish before any pruning
      warmup_epochs: 1      # epochs of a trial that are never pruned
      lower: null           # threshold: prune while valid GAUC is below this
    params:
      learning_rate: {key: train.learning_rate, low: 1.0e-4, high: 1.0e-2, log: true}
      mlp_hidden:    {key: model.mlp_hidden, values: [[200, 80], [256, 128]]}

A parameter is either a list of ``values`` (categorical; the only kind a grid
takes) or a range ``low``/``high`` (``log``, ``step``; ``type: int|float``,
default int when both bounds are integers). ``key`` is a dotted key of the
resolved config (``model.*``, ``train.*``, ``regularizer.*``).

One file serves every model: :meth:`SearchSpace.for_run` leaves out, with the
reason, a parameter whose key the model does not have (``model.pooling_mode``
for DIN, whose attention replaces pooling; the MLP for LR), a
``regularizer.<name>.*`` key of a regulariser other than the run's, and a key
the user fixed with ``--set``. Values are type-checked against the config
defaults the same way config files are, so a bad file fails before any trial
with one line naming the file and the parameter.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from din_model.config import CONFIG_ROOT, check_layer
from din_model.config.resolve import base_config
from din_model.config.tree import iter_leaves, set_dotted
from din_model.errors import ConfigError
from din_model.registry import model_names
from din_model.registry.files import load_mapping

SPACES_DIR = CONFIG_ROOT / "tuning"
SAMPLERS = ("tpe", "grid")
PRUNERS = ("median", "threshold", "none")
TOP_KEYS = ("sampler", "pruner", "params", "description")
PARAM_KEYS = ("key", "values", "low", "high", "log", "step", "type")
PRUNER_KEYS = ("name", "startup_trials", "warmup_epochs", "lower")
SCALAR = (str, int, float, bool, type(None))


def available_spaces() -> list[str]:
    """Names of the packaged spaces (``default``, ``recbole``, ...)."""
    return sorted(p.stem for p in SPACES_DIR.glob("*.yaml"))


def space_path(name_or_path: str | Path) -> Path:
    """A packaged space's file for a bare name, else the user's file (which must exist)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if "/" not in text and path.suffix == "" and (SPACES_DIR / f"{text}.yaml").is_file():
        return SPACES_DIR / f"{text}.yaml"
    raise ConfigError(
        f"{text}: no such search space file or packaged space "
        f"(packaged: {', '.join(available_spaces())})"
    )


def label(value: Any) -> Any:
    """What Optuna stores for a categorical value: scalars as they are, lists as JSON text.

    Optuna's categorical distributions (and GridSampler) accept only None,
    bool, int, float and str, so ``[64, 64, 64]`` is stored as ``"[64, 64, 64]"``.
    """
    return value if isinstance(value, SCALAR) else json.dumps(value)


@dataclass(frozen=True)
class Param:
    """One tuned parameter: its name in the study and the config key it sets."""

    name: str
    key: str
    values: tuple[Any, ...] | None = None  # categorical: config values (coerced)
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    integer: bool = False

    @property
    def categorical(self) -> bool:
        return self.values is not None

    @property
    def labels(self) -> list[Any]:
        return [label(v) for v in self.values or ()]

    def suggest(self, trial: Any) -> Any:
        """Ask ``trial`` (an ``optuna.Trial``) for this parameter; returns the stored label."""
        if self.categorical:
            return trial.suggest_categorical(self.name, self.labels)
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def value(self, stored: Any) -> Any:
        """The config value for what Optuna stored (a label of a categorical parameter)."""
        if not self.categorical:
            return int(stored) if self.integer else float(stored)
        labels = self.labels
        if stored not in labels:
            raise ConfigError(f"parameter {self.name}: {stored!r} is not one of {labels}")
        return self.values[labels.index(stored)]

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (part of the study's identity)."""
        if self.categorical:
            return {"key": self.key, "values": list(self.values)}
        return {
            "key": self.key,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            "int": self.integer,
        }


@dataclass(frozen=True)
class PrunerSpec:
    """When a trial is stopped early, on its per-epoch validation GAUC."""

    name: str = "median"
    startup_trials: int = 5
    warmup_epochs: int = 1
    lower: float | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A loaded space file: sampler, pruner and parameters, plus what was left out for a run."""

    name: str
    path: Path
    sampler: str
    params: tuple[Param, ...]
    pruner: PrunerSpec = field(default_factory=PrunerSpec)
    dropped: tuple[tuple[str, str], ...] = ()  # (parameter, why it does not apply)

    @property
    def is_grid(self) -> bool:
        return self.sampler == "grid"

    def grid(self) -> dict[str, list[Any]]:
        """GridSampler's search space: every parameter's labels."""
        return {p.name: p.labels for p in self.params}

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.values or ()) for p in self.params)

    def digest(self) -> str:
        """A short hash of what the study explores (parameters, sampler, pruner)."""
        payload = {
            "sampler": self.sampler,
            "pruner": self.pruner.__dict__,
            "params": {p.name: p.describe() for p in self.params},
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def param(self, name: str) -> Param:
        for candidate in self.params:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"{self.path}: no parameter '{name}' in this space")

    def layer(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        """A config layer (nested dict) from a trial's stored parameters."""
        tree: dict[str, Any] = {}
        for name, value in stored.items():
            param = self.param(name)
            set_dotted(tree, param.key, param.value(value))
        return tree

    def for_run(
        self,
        model: str,
        regularizer: str,
        config: Mapping[str, Any],
        fixed_keys: Iterable[str] = (),
    ) -> SearchSpace:
        """The parameters that apply to ``model`` with ``regularizer``, checked against ``config``.

        ``config`` is the run's resolved config; ``fixed_keys`` are the keys the
        user set with ``--set`` (they stay fixed). A ConfigError when nothing is left.
        """
        leaves = dict(iter_leaves(config))
        fixed = set(fixed_keys)
        kept: list[Param] = []
        dropped: list[tuple[str, str]] = []
        for param in self.params:
            parts = param.key.split(".")
            if param.key in fixed:
                dropped.append((param.name, f"{param.key} is fixed by --set"))
            elif parts[0] == "regularizer" and len(parts) > 2 and parts[1] != regularizer:
                dropped.append((param.name, f"{param.key} applies only with --reg {parts[1]}"))
            elif param.key not in leaves:
                dropped.append((param.name, f"{model} has no setting {param.key}"))
            else:
                kept.append(_checked(param, config, f"{self.path}: params.{param.name}"))
        if not kept:
            raise ConfigError(
                f"{self.path}: no parameter of this space applies to {model} with "
                f"--reg {regularizer} ({'; '.join(why for _, why in dropped)})"
            )
        return replace(self, params=tuple(kept), dropped=tuple(dropped))


def _checked(param: Param, config: Mapping[str, Any], source: str) -> Param:
    """``param`` with its values or bounds coerced to the config default's type."""

    def coerce(value: Any) -> Any:
        tree: dict[str, Any] = {}
        set_dotted(tree, param.key, value)
        checked = check_layer(tree, config, source)
        return dict(iter_leaves(checked)).get(param.key, value)

    if param.categorical:
        return replace(param, values=tuple(coerce(v) for v in param.values))
    low, high = coerce(param.low), coerce(param.high)
    default = dict(iter_leaves(config))[param.key]
    if default is None:  # an optional setting (null by default): the range says what it is
        return replace(param, low=low, high=high)
    if isinstance(default, int) and not isinstance(default, bool) and not param.integer:
        raise ConfigError(f"{source}: {param.key} is an integer setting; use integer bounds")
    if not isinstance(default, int | float) or isinstance(default, bool):
        raise ConfigError(
            f"{source}: {param.key} is not a number ({default!r}); give it `values:` instead"
        )
    return replace(param, low=low, high=high)


# -- reading a file -------------------------------------------------------------------------


def _all_config_keys() -> set[str]:
    keys: set[str] = set()
    for model in model_names():
        keys.update(k for k, _ in iter_leaves(base_config(model)))
    return keys


def _number(value: Any, where: str) -> float | int:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    return value


def _parse_param(name: Any, entry: Any, path: Path, keys: set[str]) -> Param:
    where = f"{path}: params.{name}"
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"{path}: params: parameter names are identifiers, got {name!r}")
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with key and values or low/high")
    unknown = sorted(set(entry) - set(PARAM_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown field; use {', '.join(PARAM_KEYS)}")
    key = entry.get("key")
    if not isinstance(key, str) or key not in keys:
        raise ConfigError(
            f"{where}.key: expected a config key such as train.learning_rate, got {key!r}"
        )
    if "values" in entry:
        if any(k in entry for k in ("low", "high", "log", "step", "type")):
            raise ConfigError(f"{where}: give either values or low/high, not both")
        values = entry["values"]
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}.values: expected a non-empty list, got {values!r}")
        labels = [label(v) for v in values]
        if len(set(map(json.dumps, labels))) != len(labels):
            raise ConfigError(f"{where}.values: values repeat: {values!r}")
        return Param(name=name, key=key, values=tuple(values))
    for bound in ("low", "high"):
        if bound not in entry:
            raise ConfigError(f"{where}.{bound}: missing (or give a list of values)")
    low, high = _number(entry["low"], f"{where}.low"), _number(entry["high"], f"{where}.high")
    if not low < high:
        raise ConfigError(f"{where}: expected low < high, got {low} and {high}")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}.low: a log range needs low > 0, got {low}")
    step = entry.get("step")
    if step is not None:
        step = _number(step, f"{where}.step")
        if step <= 0 or log:
            raise ConfigError(f"{where}.step: expected a positive step without log, got {step}")
    kind = entry.get("type", "int" if isinstance(low, int) and isinstance(high, int) else "float")
    if kind not in ("int", "float"):
        raise ConfigError(f"{where}.type: expected int or float, got {kind!r}")
    integer = kind == "int"
    if integer and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise ConfigError(f"{where}: an int range needs integer low, high and step")
    return Param(name=name, key=key, low=low, high=high, log=log, step=step, integer=integer)


def _parse_pruner(entry: Any, path: Path) -> PrunerSpec:
    if entry is None:
        return PrunerSpec()
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{path}: pruner: expected a mapping or one of {', '.join(PRUNERS)}")
    unknown = sorted(set(entry) - set(PRUNER_KEYS))
    if unknown:
        raise ConfigError(f"{path}: pruner.{unknown[0]}: unknown field; use {PRUNER_KEYS}")
    name = entry.get("name", "median")
    if name not in PRUNERS:
        raise ConfigError(f"{path}: pruner.name: expected one of {PRUNERS}, got {name!r}")
    values: dict[str, Any] = {"name": name}
    for field_name in ("startup_trials", "warmup_epochs"):
        if field_name in entry:
            value = entry[field_name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"{path}: pruner.{field_name}: expected an integer >= 0, got {value!r}"
                )
            values[field_name] = value
    if name == "threshold":
        if entry.get("lower") is None:
            raise ConfigError(f"{path}: pruner.lower: the threshold pruner needs a lower bound")
        values["lower"] = float(_number(entry["lower"], f"{path}: pruner.lower"))
    return PrunerSpec(**values)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """Read and check a space file (a packaged name or a path); one-line ConfigError if bad."""
    path = space_path(name_or_path)
    raw = load_mapping(path, "a search space mapping (sampler, pruner, params)")
    unknown = sorted(set(raw) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key; use {', '.join(TOP_KEYS)}")
    sampler = raw.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise ConfigError(
            f"{path}: sampler: expected one of {', '.join(SAMPLERS)}, got {sampler!r}"
        )
    entries = raw.get("params")
    if not isinstance(entries, Mapping) or not entries:
        raise ConfigError(f"{path}: params: expected a mapping of parameter names, got {entries!r}")
    keys = _all_config_keys()
    params = tuple(_parse_param(name, entry, path, keys) for name, entry in entries.items())
    seen: dict[str, str] = {}
    for param in params:
        if param.key in seen:
            raise ConfigError(
                f"{path}: params.{param.name}.key: {param.key} is already set by {seen[param.key]}"
            )
        seen[param.key] = param.name
    if sampler == "grid":
        ranged = [p.name for p in params if not p.categorical]
        if ranged:
            raise ConfigError(
                f"{path}: params.{ranged[0]}: a grid space needs a list of values, not low/high"
            )
    pruner = _parse_pruner(raw.get("pruner"), path)
    return SearchSpace(name=path.stem, path=path, sampler=sampler, params=params, pruner=pruner)
