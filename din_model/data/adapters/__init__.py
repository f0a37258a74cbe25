"""Dataset adapters: each owner's raw files to the canonical tables of :mod:`..schema`.

Public entry points: :func:`ingest` (read a source into :class:`CanonicalData`)
and :func:`detect_layout` (which of a dataset's file layouts a source holds).
One module per dataset family implements ``LAYOUT_FILES`` (layout name -> the
files it expects, for error messages), ``detect(source)`` and
``read(source, layout, policy)``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import ModuleType
from typing import Literal

from din_model.data.bad_lines import BadLinePolicy
from din_model.data.schema import CanonicalData
from din_model.errors import ConfigError, DataError

from . import amazon, movielens, taobao
from ._sources import read_synthetic_marker, unrecognised_layout

logger = logging.getLogger(__name__)

ADAPTERS: dict[str, ModuleType] = {"amazon": amazon, "movielens": movielens, "taobao": taobao}
DATASETS: tuple[str, ...] = tuple(ADAPTERS)


def _adapter(dataset: str) -> ModuleType:
    try:
        return ADAPTERS[dataset]
    except KeyError:
        raise ConfigError(
            f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}"
        ) from None


def detect_layout(dataset: str, source: str | Path) -> str:
    """Name of the file layout found at ``source`` (e.g. ``amazon-2014``, ``ml-100k``).

    Raises DataError naming the directory and the files each layout expects
    when none is found, or the candidates when several could be meant.
    """
    adapter = _adapter(dataset)
    source = Path(source)
    if not source.exists():
        raise DataError(source, f"an existing directory holding the {dataset} files", got="nothing")
    layout = adapter.detect(source)
    if layout is None:
        raise unrecognised_layout(dataset, source, adapter.LAYOUT_FILES)
    return layout


def ingest(
    dataset: str,
    source: str | Path,
    *,
    on_bad_lines: Literal["error", "skip"] = "error",
    rejects_dir: Path | None = None,
) -> CanonicalData:
    """Read the raw files of ``dataset`` at ``source`` into canonical tables.

    ``source`` is the directory as the owner ships it (for Amazon also the
    reviews file itself). ``on_bad_lines="skip"`` writes bad lines to
    ``<rejects_dir>/<file>.rejects.jsonl`` and counts them in
    ``report["rejected_lines"]``; an empty file or an unknown layout always
    fails. Data marked by a ``SYNTHETIC.json`` is flagged ``synthetic``.
    """
    adapter = _adapter(dataset)
    policy = BadLinePolicy(on_bad_lines, rejects_dir)
    source = Path(source)
    layout = detect_layout(dataset, source)
    marker = read_synthetic_marker(source)  # a broken marker fails before the long read
    started = time.perf_counter()
    logger.info("ingesting %s (%s layout) from %s", dataset, layout, source)
    try:
        data = adapter.read(source, layout, policy)
    finally:  # rejects are written even when the read fails: they show what was wrong
        rejects_files = policy.write_rejects()
    data.report.update(policy.summary())
    data.report["rejects_files"] = [str(path) for path in rejects_files]
    if marker is not None:
        marker_path, content = marker
        data.synthetic = True
        data.report["synthetic"] = content
        data.source_files.append(marker_path)
        logger.warning("%s marks this data as SYNTHETIC", marker_path)
    data.report["ingest_seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "ingested %s: %d interactions, %d users, %d items, %d rejected lines in %.1f s",
        layout,
        data.interactions.height,
        data.users.height,
        data.items.height,
        data.report["rejected_lines"],
        data.report["ingest_seconds"],
    )
    return data


__all__ = ["DATASETS", "detect_layout", "ingest"]
