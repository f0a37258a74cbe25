"""The one output layout of a training run, written by :func:`din_model.pipeline.fit_and_score`.

``din train``, ``din run``, every ablation cell and ``din rerun`` write the same
files, so anything that reads a run (the MLflow logging step, the tests, a user)
reads one layout:

========================  ==============================================================
``config.yaml``           the resolved config, with the command and config hash on top
``checkpoints/best.pt``   the model chosen on validation (what is scored and registered)
``checkpoints/last.pt``   the last epoch with optimizer state (what a killed run resumes)
``metrics.json``          validation of the chosen epoch, test metrics, history, identities
``predictions.parquet``   user_id, label and score of every test sample
``attention.json``        Fig. 5 data: activation weights of chosen test samples (DIN only)
``item_map.parquet``      Fig. 6 data: t-SNE of the most frequent items' embeddings, their
                          category and one test user's predicted CTR for each (DIN only)
``serving/``              what the served model needs to take raw requests: the request
                          schema, vocabularies, item table and raw example rows
========================  ==============================================================

The prepared folder's report (``prepare_report.json``) is read here too, for the
raw-data fingerprint every run records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.parquet"
ATTENTION_FILE = "attention.json"
ITEM_MAP_FILE = "item_map.parquet"
SERVING_DIR = "serving"
PREPARE_REPORT = "prepare_report.json"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run's outputs under ``out_dir``."""

    out_dir: Path

    @property
    def config(self) -> Path:
        return self.out_dir / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.out_dir / METRICS_FILE

    @property
    def predictions(self) -> Path:
        return self.out_dir / PREDICTIONS_FILE

    @property
    def attention(self) -> Path:
        return self.out_dir / ATTENTION_FILE

    @property
    def item_map(self) -> Path:
        return self.out_dir / ITEM_MAP_FILE

    @property
    def serving(self) -> Path:
        """``serving/``: raw_inputs.json, items.parquet, example.parquet and ``vocab/``."""
        return self.out_dir / SERVING_DIR

    @property
    def best_checkpoint(self) -> Path:
        return self._checkpoints()[1]

    @property
    def last_checkpoint(self) -> Path:
        return self._checkpoints()[0]

    def _checkpoints(self) -> tuple[Path, Path]:
        # imported here: `din prepare` reads this module's PREPARE_REPORT without torch
        from din_model.training.checkpoint import checkpoint_paths

        return checkpoint_paths(self.out_dir)

    def read_metrics(self) -> dict:
        return json.loads(self.metrics.read_text())


def read_prepare_report(data_dir: str | Path) -> dict:
    """``prepare_report.json`` of a prepared folder; ``{}`` when absent or unreadable."""
    report = Path(data_dir) / PREPARE_REPORT
    if not report.is_file():
        return {}
    try:
        payload = json.loads(report.read_text())
    except json.JSONDecodeError:
        return {}
    return payload if isinstance(payload, dict) else {}


def source_fingerprint(data_dir: str | Path) -> str | None:
    """The raw-data fingerprint recorded by ``din prepare``, when there is one."""
    payload = read_prepare_report(data_dir)
    for key in ("data_fingerprint", "fingerprint"):
        if isinstance(payload.get(key), str):
            return payload[key]
    return None
