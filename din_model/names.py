"""The names users type on the command line, kept free of heavy imports.

Argument parsers need these lists to build ``--help``; importing them from the
model or regulariser packages would load torch for every ``din`` command.

``DATASETS`` and ``MODEL_NAMES`` are not lists kept here: they are read from
the registries (:mod:`din_model.registry`) when first asked for, so a model or
dataset added there (or through ``DIN_MODEL_DIRS`` / ``DIN_SPEC_DIRS``) is
known everywhere. ``REGULARIZER_NAMES`` is the one list of regulariser names;
the classes of :mod:`din_model.regularizers` are checked against it by the tests.
"""

from __future__ import annotations

from typing import Any

REGULARIZER_NAMES = ("none", "l2", "dropout", "filter", "difacto", "mba")


def __getattr__(name: str) -> Any:
    """``DATASETS`` and ``MODEL_NAMES``, from the registries (PEP 562 module attributes)."""
    if name == "DATASETS":
        from din_model.registry import dataset_names

        return dataset_names()
    if name == "MODEL_NAMES":
        from din_model.registry import model_names

        return model_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
