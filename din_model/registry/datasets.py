"""The dataset registry: the feature-spec YAMLs of the package and of ``$DIN_SPEC_DIRS``.

A dataset (the name ``din prepare --dataset`` takes) is one adapter module plus
one or more spec files, one per layout family (``<family>.yaml``, see
:mod:`din_model.data.specs.spec` for the feature part). Besides the features, a
spec carries the dataset-level keys, so that nothing about a dataset lives in a
hard-coded list elsewhere::

    family: movielens                  # the file's stem
    dataset: movielens                 # required: the CLI name this family belongs to
    adapter: din_model.data.adapters.movielens   # module with LAYOUT_FILES, detect, read
    fetch: din_model.data.sources.catalog:movielens_source   # optional: `din fetch`
    synthetic: package.module:writer   # optional: generator of synthetic raw files
    train: {batch_size: 256}           # optional: the dataset's training defaults
    deployment: {model: din}           # optional: parameters of din-train/<dataset>

A dataset with several families (Taobao) may repeat a dataset-level key in each
of its specs, but the values must agree: a conflict is a ConfigError naming both
files. Folders in ``DIN_SPEC_DIRS`` (``os.pathsep`` between them) add datasets
or families without touching the package.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from din_model.errors import ConfigError
from din_model.registry.files import (
    check_import_path,
    import_object,
    load_mapping,
    search_dirs,
    yaml_files,
)

SPEC_DIRS_ENV = "DIN_SPEC_DIRS"
PACKAGED_SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"
#: The keys of a spec file that describe the dataset rather than the family's features.
DATASET_KEYS = ("dataset", "adapter", "fetch", "synthetic", "train", "deployment")
#: What an adapter module must define (see :mod:`din_model.data.adapters`).
ADAPTER_API = ("LAYOUT_FILES", "detect", "read")


@dataclass(frozen=True)
class SpecFile:
    """Where the spec of one layout family is, and the dataset it belongs to."""

    family: str
    dataset: str
    path: Path


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: its spec families and dataset-level settings.

    ``origins`` maps each dataset-level key that is set to the spec file that
    sets it (first one, for a key repeated with the same value), for messages.
    """

    name: str
    families: tuple[str, ...]
    adapter: str
    fetch: str | None = None
    synthetic: str | None = None
    train: dict[str, Any] = field(default_factory=dict)
    deployment: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)


def spec_dirs() -> tuple[Path, ...]:
    """The packaged spec folder, then those of ``$DIN_SPEC_DIRS``."""
    return search_dirs(PACKAGED_SPECS, SPEC_DIRS_ENV)


def _checked_value(key: str, value: Any, path: Path) -> Any:
    """A dataset-level value of the right shape (``None`` when the key is absent)."""
    if value is None:
        return None
    if key == "dataset":
        if not isinstance(value, str) or not value.isidentifier():
            raise ConfigError(f"{path}: 'dataset' must be a name like movielens, got {value!r}")
        return value
    if key in ("adapter", "fetch", "synthetic"):
        return check_import_path(value, key, path, attribute=key != "adapter")
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{key}' must be a mapping, got {value!r}")
    if key == "deployment" and "dataset" in value:
        raise ConfigError(f"{path}: deployment.dataset is implied by 'dataset'; remove it")
    return value


def _read_spec(path: Path) -> tuple[SpecFile, dict[str, Any]]:
    raw = load_mapping(path, "a feature spec mapping")
    family = raw.get("family")
    if family != path.stem:
        raise ConfigError(f"{path}: 'family' must be the file's name {path.stem!r}, got {family!r}")
    if "dataset" not in raw:
        raise ConfigError(f"{path}: missing key 'dataset' (the CLI name of this family's dataset)")
    values = {key: _checked_value(key, raw.get(key), path) for key in DATASET_KEYS}
    return SpecFile(family, values["dataset"], path), values


def _merge(name: str, specs: list[tuple[SpecFile, dict[str, Any]]]) -> DatasetEntry:
    """One dataset from its specs; a key set twice must have the same value."""
    merged: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    for spec, values in specs:
        for key, value in values.items():
            if value is None or key == "dataset":
                continue
            if key in merged and merged[key] != value:
                raise ConfigError(
                    f"dataset {name!r}: '{key}' differs between {origins[key]} and {spec.path}; "
                    "a dataset-level key must agree in every spec of the dataset"
                )
            merged.setdefault(key, value)
            origins.setdefault(key, spec.path)
    if "adapter" not in merged:
        paths = ", ".join(str(spec.path) for spec, _ in specs)
        raise ConfigError(f"dataset {name!r}: no spec gives its 'adapter' ({paths})")
    return DatasetEntry(
        name=name,
        families=tuple(spec.family for spec, _ in specs),
        adapter=merged["adapter"],
        fetch=merged.get("fetch"),
        synthetic=merged.get("synthetic"),
        train=merged.get("train", {}),
        deployment=merged.get("deployment", {}),
        origins=origins,
    )


@dataclass(frozen=True)
class _Registry:
    specs: dict[str, SpecFile]
    datasets: dict[str, DatasetEntry]


@functools.cache
def _load(dirs: tuple[Path, ...]) -> _Registry:
    specs: dict[str, SpecFile] = {}
    by_dataset: dict[str, list[tuple[SpecFile, dict[str, Any]]]] = {}
    for path in yaml_files(dirs):
        spec, values = _read_spec(path)
        if spec.family in specs:
            raise ConfigError(
                f"spec family {spec.family!r} is registered twice: "
                f"{specs[spec.family].path} and {path}"
            )
        specs[spec.family] = spec
        by_dataset.setdefault(spec.dataset, []).append((spec, values))
    datasets = {name: _merge(name, by_dataset[name]) for name in sorted(by_dataset)}
    return _Registry(specs, datasets)


def _registry() -> _Registry:
    return _load(spec_dirs())


def dataset_names() -> tuple[str, ...]:
    """Every registered dataset, by name."""
    return tuple(_registry().datasets)


def dataset_entry(name: str) -> DatasetEntry:
    """The registered dataset ``name``; a ConfigError listing the valid names otherwise."""
    datasets = _registry().datasets
    if name not in datasets:
        raise ConfigError(f"unknown dataset '{name}': choose one of {', '.join(datasets)}")
    return datasets[name]


def spec_families() -> tuple[str, ...]:
    """Every registered layout family (one spec file each), by name."""
    return tuple(sorted(_registry().specs))


def spec_file(family: str) -> SpecFile:
    """The spec file of ``family``; a ConfigError listing the valid families otherwise."""
    specs = _registry().specs
    if family not in specs:
        raise ConfigError(
            f"unknown spec family {family!r}; expected one of {', '.join(spec_families())}"
        )
    return specs[family]


def dataset_train_layer(name: str) -> tuple[dict[str, Any], Path] | None:
    """The dataset's training defaults as a config layer, and the spec that sets them."""
    entry = dataset_entry(name)
    if not entry.train:
        return None
    return {"train": copy.deepcopy(entry.train)}, entry.origins["train"]


def adapter_module(name: str) -> ModuleType:
    """The adapter of ``name``, imported now and checked for the adapter interface."""
    entry = dataset_entry(name)
    where = str(entry.origins["adapter"])
    module = import_object(entry.adapter, where)
    missing = [attribute for attribute in ADAPTER_API if not hasattr(module, attribute)]
    if missing:
        raise ConfigError(f"{where}: adapter {entry.adapter!r} lacks {', '.join(missing)}")
    return module


def fetchable_datasets() -> tuple[str, ...]:
    """The datasets ``din fetch`` knows a download source for."""
    return tuple(e.name for e in _registry().datasets.values() if e.fetch)


def fetch_function(name: str) -> Callable[..., Any]:
    """The catalog function that returns the download source of ``name``."""
    entry = dataset_entry(name)
    if entry.fetch is None:
        raise ConfigError(
            f"dataset '{name}' has no download source ('fetch' in its spec); "
            f"downloadable: {', '.join(fetchable_datasets()) or 'none'}"
        )
    return import_object(entry.fetch, str(entry.origins["fetch"]))


def synthetic_datasets() -> tuple[str, ...]:
    """The datasets with a generator of synthetic raw files."""
    return tuple(e.name for e in _registry().datasets.values() if e.synthetic)


def synthetic_generator(name: str) -> Callable[..., Any]:
    """The generator of synthetic raw files of ``name`` (``writer(out, scale, seed, force=)``)."""
    entry = dataset_entry(name)
    if entry.synthetic is None:
        raise ConfigError(
            f"synthetic data exists only for {', '.join(synthetic_datasets()) or 'no dataset'}, "
            f"not '{name}'"
        )
    return import_object(entry.synthetic, str(entry.origins["synthetic"]))


def clear_cache() -> None:
    """Forget the files read so far (for code that edits registry folders in place)."""
    _load.cache_clear()
