"""Registries of models and datasets: what exists is what the YAML files declare.

* models: ``din_model/configs/models/<name>.yaml`` plus the folders of
  ``$DIN_MODEL_DIRS`` (:mod:`din_model.registry.models`);
* datasets: the feature specs ``din_model/data/specs/<family>.yaml`` plus the
  folders of ``$DIN_SPEC_DIRS`` (:mod:`din_model.registry.datasets`).

Every list of names (CLI choices, flow checks, deployments, the ablation grid)
is derived from here, so a new model or dataset is registered in one place.
This package imports no torch and nothing heavy: argument parsers use it.
"""

from din_model.registry.datasets import (
    DATASET_KEYS,
    SPEC_DIRS_ENV,
    DatasetEntry,
    SpecFile,
    adapter_module,
    dataset_entry,
    dataset_names,
    dataset_train_layer,
    fetch_function,
    fetchable_datasets,
    spec_families,
    spec_file,
    synthetic_datasets,
    synthetic_generator,
)
from din_model.registry.models import (
    MODEL_DIRS_ENV,
    AblationGrid,
    ModelEntry,
    ablation_grid,
    model_class,
    model_defaults,
    model_entry,
    model_names,
)
from din_model.registry.regularizers import REGULARIZER_NAMES


def clear_caches() -> None:
    """Forget every registry file read so far (after editing a registry folder in place)."""
    from din_model.registry import datasets, models

    datasets.clear_cache()
    models.clear_cache()


__all__ = [
    "DATASET_KEYS",
    "MODEL_DIRS_ENV",
    "REGULARIZER_NAMES",
    "SPEC_DIRS_ENV",
    "AblationGrid",
    "DatasetEntry",
    "ModelEntry",
    "SpecFile",
    "ablation_grid",
    "adapter_module",
    "clear_caches",
    "dataset_entry",
    "dataset_names",
    "dataset_train_layer",
    "fetch_function",
    "fetchable_datasets",
    "model_class",
    "model_defaults",
    "model_entry",
    "model_names",
    "spec_families",
    "spec_file",
    "synthetic_datasets",
    "synthetic_generator",
]
