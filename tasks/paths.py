"""Folders the pipeline reads and writes (all overridable, all outside git).

- data root: ``<repo>/data`` (``DIN_DATA_DIR``): ``raw/<dataset>`` holds real
  downloads (``din fetch``), ``synthetic/`` the generated Amazon-format sets.
- work root: ``<repo>/outputs/pipeline`` (``DIN_WORK_DIR`` or the flow's
  ``work_dir``): content-addressed caches of canonical tables and prepared
  samples, and one folder per training run.
"""

from __future__ import annotations

import os
from pathlib import Path

from tasks.store import PROJECT_ROOT

DATA_DIR_ENV = "DIN_DATA_DIR"
WORK_DIR_ENV = "DIN_WORK_DIR"


def data_root() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or PROJECT_ROOT / "data").resolve()


def raw_dir(dataset: str) -> Path:
    return data_root() / "raw" / dataset


def synthetic_dir(dataset: str, scale: float, seed: int) -> Path:
    return data_root() / "synthetic" / f"{dataset}-scale{scale:g}-seed{seed}"


def work_root(work_dir: str | Path | None = None) -> Path:
    root = work_dir or os.environ.get(WORK_DIR_ENV) or PROJECT_ROOT / "outputs" / "pipeline"
    return Path(root).expanduser().resolve()
