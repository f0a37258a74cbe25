"""Dataset adapters: each owner's raw files to the canonical tables of :mod:`..schema`.

Public entry points: :func:`ingest` (read a source into :class:`CanonicalData`)
and :func:`detect_layout` (which of a dataset's file layouts a source holds).
One module per dataset implements ``LAYOUT_FILES`` (layout name -> the files it
expects, for error messages), ``detect(source)`` (the layout found, or None) and
``read(source, layout, policy)``. Which module serves which dataset is the
``adapter:`` key of the dataset's feature specs (:mod:`din_model.registry.datasets`),
so an adapter outside this package (on ``DIN_SPEC_DIRS``) works the same way.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Literal

from din_model.data.canonical.schema import CanonicalData
from din_model.data.readers.bad_lines import BadLinePolicy
from din_model.errors import DataError
from din_model.registry import adapter_module

from ._sources import read_synthetic_marker, unrecognised_layout

logger = logging.getLogger(__name__)


def detect_layout(dataset: str, source: str | Path) -> str:
    """Name of the file layout found at ``source`` (e.g. ``amazon-2014``, ``ml-100k``).

    Raises DataError naming the directory and the files each layout expects
    when none is found, or the candidates when several could be meant.
    """
    adapter = adapter_module(dataset)
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
    adapter = adapter_module(dataset)
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


__all__ = ["detect_layout", "ingest"]
