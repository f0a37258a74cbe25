"""The data family of a run: which data a model's scores can be compared on.

``<dataset>/<layout>/<name>``: two models are only ever judged against each
other when they were trained on the same family. ``name`` is the Amazon
category (read from the reviews file name, as the adapter reads it: 2014
``reviews_<Category>_5.json[.gz]``, 2018 ``<Category>_5.json[.gz]``),
``synthetic`` for generated data (whatever its file names claim), and the
layout for every other dataset (a MovieLens release is one data set).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from din_model.registry import adapter_module

SYNTHETIC_NAME = "synthetic"


def _amazon_patterns() -> tuple[re.Pattern[str], ...]:
    # the adapter's own file-name rules (reached through the dataset registry: the
    # adapters sit above this package in the layers)
    adapter = adapter_module("amazon")
    return adapter._REVIEWS_2014, adapter._REVIEWS_2018  # noqa: SLF001


def amazon_category(source_files: Sequence[str | Path]) -> str | None:
    """The category named by the first reviews file among ``source_files``, if any."""
    patterns = _amazon_patterns()
    for path in source_files:
        for pattern in patterns:
            match = pattern.match(Path(path).name)
            if match is not None:
                return match["category"]
    return None


def data_family(
    dataset: str, layout: str, source_files: Sequence[str | Path], synthetic: bool
) -> str:
    """``<dataset>/<layout>/<name>``, e.g. ``amazon/amazon-2018/Magazine_Subscriptions``.

    An Amazon source without a recognisable reviews file name falls back to the layout.
    """
    if synthetic:
        name = SYNTHETIC_NAME
    elif dataset == "amazon":
        name = amazon_category(source_files) or layout
    else:
        name = layout
    return f"{dataset}/{layout}/{name}"
