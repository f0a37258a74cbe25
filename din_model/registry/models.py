"""The model registry: one YAML per model, found in the package and in ``$DIN_MODEL_DIRS``.

A model is registered by one file ``<name>.yaml`` (the name is the file's stem)::

    class: din_model.models.din:DIN     # module:Class, imported only when a model is built
    description: Deep Interest Network with PReLU
    ablation:                           # optional: a row of the paper's comparison
      order: 6                          #   its position in the grid
      regularizers: [dropout, filter]   #   optional: the grid also runs it with these
    model:                              # every default of the model's `model:` section
      embedding_dim: 64

so adding a model is that file plus the module with its class: the CLI choices,
the config defaults (:mod:`din_model.config.resolve`), ``build_model`` and the
ablation grid all come from here. Folders in ``DIN_MODEL_DIRS`` (``os.pathsep``
between them) add models without touching the package; a name registered twice
is an error rather than a silent override.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from din_model.errors import ConfigError
from din_model.registry.files import (
    check_import_path,
    import_object,
    load_mapping,
    search_dirs,
    yaml_files,
)
from din_model.registry.regularizers import REGULARIZER_NAMES

MODEL_DIRS_ENV = "DIN_MODEL_DIRS"
PACKAGED_MODELS = Path(__file__).resolve().parents[1] / "configs" / "models"
ENTRY_KEYS = ("class", "description", "ablation", "model")
ABLATION_KEYS = ("order", "regularizers")


@dataclass(frozen=True)
class AblationSlot:
    """Where a model sits in the paper's comparison, and the regularisers it is run with."""

    order: int
    regularizers: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: its YAML, its class (as ``module:Class``) and its defaults."""

    name: str
    path: Path
    class_path: str
    description: str
    defaults: dict[str, Any]
    ablation: AblationSlot | None = None


@dataclass(frozen=True)
class AblationGrid:
    """The default grid of ``din ablation``: every model unregularised, one model regularised.

    ``regularizers`` starts with ``none`` (the unregularised row of every model).
    """

    models: tuple[str, ...]
    regularized_model: str
    regularizers: tuple[str, ...]


def model_dirs() -> tuple[Path, ...]:
    """The packaged model folder, then those of ``$DIN_MODEL_DIRS``."""
    return search_dirs(PACKAGED_MODELS, MODEL_DIRS_ENV)


def _ablation_slot(value: Any, path: Path) -> AblationSlot | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(ABLATION_KEYS):
        raise ConfigError(
            f"{path}: 'ablation' must be a mapping with {' and/or '.join(ABLATION_KEYS)}"
        )
    order = value.get("order")
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ConfigError(f"{path}: ablation.order must be a positive integer, got {order!r}")
    regularizers = value.get("regularizers") or []
    if not isinstance(regularizers, list) or not all(isinstance(r, str) for r in regularizers):
        raise ConfigError(f"{path}: ablation.regularizers must be a list of regulariser names")
    return AblationSlot(order, tuple(regularizers))


def parse_model_file(path: Path) -> ModelEntry:
    """One model YAML; every mistake is a ConfigError naming the file and the key."""
    raw = load_mapping(path, "a mapping with 'class' and 'model'")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a model file has {', '.join(ENTRY_KEYS)}"
        )
    for key in ("class", "model"):
        if key not in raw:
            raise ConfigError(f"{path}: missing key '{key}'")
    defaults = {} if raw["model"] is None else raw["model"]  # a model without settings
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: expected a 'model' mapping of default values")
    return ModelEntry(
        name=path.stem,
        path=path,
        class_path=check_import_path(raw["class"], "class", path, attribute=True),
        description=str(raw.get("description") or ""),
        defaults=defaults,
        ablation=_ablation_slot(raw.get("ablation"), path),
    )


@functools.cache
def _load(dirs: tuple[Path, ...]) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for path in yaml_files(dirs):
        entry = parse_model_file(path)
        if entry.name in entries:
            raise ConfigError(
                f"model {entry.name!r} is registered twice: {entries[entry.name].path} and {path}"
            )
        entries[entry.name] = entry
    slots = [(e.ablation.order, e.name) for e in entries.values() if e.ablation is not None]
    orders = [order for order, _ in slots]
    if len(set(orders)) != len(orders):
        raise ConfigError(f"two models share an ablation.order: {sorted(slots)}")
    return entries


def _entries() -> dict[str, ModelEntry]:
    return _load(model_dirs())


def model_names() -> tuple[str, ...]:
    """Every registered model: the paper's comparison in its order, then the others by name."""
    entries = _entries().values()
    in_grid = sorted((e.ablation.order, e.name) for e in entries if e.ablation is not None)
    others = sorted(e.name for e in entries if e.ablation is None)
    return (*(name for _, name in in_grid), *others)


def model_entry(name: str) -> ModelEntry:
    """The registered model ``name``; a ConfigError listing the valid names otherwise."""
    entries = _entries()
    if name not in entries:
        raise ConfigError(f"unknown model '{name}': choose one of {', '.join(model_names())}")
    return entries[name]


def model_defaults(name: str) -> dict[str, Any]:
    """A fresh copy of the default ``model:`` section of ``name``."""
    return copy.deepcopy(model_entry(name).defaults)


def model_class(name: str) -> type:
    """The class of ``name``, imported now (this is where torch gets loaded)."""
    entry = model_entry(name)
    cls = import_object(entry.class_path, str(entry.path))
    if not isinstance(cls, type):
        raise ConfigError(f"{entry.path}: class {entry.class_path!r} is not a class")
    return cls


def ablation_grid() -> AblationGrid:
    """The paper's comparison, as the model files declare it (``ablation:``)."""

    entries = _entries()
    models = tuple(name for name in model_names() if entries[name].ablation is not None)
    regularized = [e for e in entries.values() if e.ablation and e.ablation.regularizers]
    if len(regularized) != 1:
        raise ConfigError(
            "exactly one model file must give ablation.regularizers (the model the grid "
            f"regularises); found {len(regularized)}: {', '.join(e.name for e in regularized)}"
        )
    (entry,) = regularized
    assert entry.ablation is not None
    unknown = [r for r in entry.ablation.regularizers if r not in REGULARIZER_NAMES]
    if unknown:
        raise ConfigError(
            f"{entry.path}: ablation.regularizers: unknown {', '.join(unknown)}; "
            f"choose from {', '.join(REGULARIZER_NAMES)}"
        )
    regularizers = ("none", *(r for r in entry.ablation.regularizers if r != "none"))
    return AblationGrid(models, entry.name, regularizers)


def clear_cache() -> None:
    """Forget the files read so far (for code that edits registry folders in place)."""
    _load.cache_clear()
