"""The registered model's scoring core: raw requests in, click probabilities out.

:class:`RawScorer` is a trained checkpoint plus the ``serving/`` tables of its run
(vocabularies, item table, request schema): it encodes a request with
:class:`~din_model.serving.raw_encoder.RawEncoder` and scores the ids with the
network. The MLflow model (``tasks/pyfunc_definition.py``), ``din score`` and the
latency benchmark all go through it, so there is one serving path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from din_model.data.samples.raw_inputs import ITEM_KEY_SOURCE
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, FeatureMap
from din_model.serving.network_runtime import (
    NetworkRuntime,
    Runtime,
    load_exported,
    network_runtime,
)
from din_model.serving.ranking import RankingScorer
from din_model.serving.raw_encoder import RawEncoder
from din_model.training.checkpoint import load_checkpoint

#: the artifacts of a packaged model: the checkpoint file and the run's ``serving/`` folder
CHECKPOINT_ARTIFACT = "checkpoint"
SERVING_ARTIFACT = "serving"


class RawScorer:
    """Scores raw requests: the encoder of a run's serving tables in front of a network."""

    def __init__(self, encoder: RawEncoder, network: NetworkRuntime) -> None:
        self.encoder = encoder
        self.network = network
        # DIN's candidate-free half of the activation unit computed once per ranking call
        self.ranking = RankingScorer(network)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        serving_dir: str | Path,
        runtime: Runtime = "torch",
        *,
        num_threads: int | None = None,
    ) -> RawScorer:
        """A checkpoint and its run's ``serving/`` folder.

        ``runtime``: ``torch`` (the checkpoint itself), ``onnx`` or ``torchscript`` (an
        export made at load, see :mod:`din_model.serving.network_runtime`).
        """
        payload = load_checkpoint(checkpoint)
        feature_map = FeatureMap.from_dict(payload["feature_map"], source=checkpoint)
        network = network_runtime(checkpoint, runtime, num_threads=num_threads)
        return cls(RawEncoder.load(serving_dir, feature_map, network.max_len), network)

    @classmethod
    def from_export(
        cls, folder: str | Path, runtime: Runtime | None = None, *, num_threads: int | None = None
    ) -> RawScorer:
        """A ``din export`` folder: the exported network, its feature map and serving tables."""
        folder = Path(folder)
        feature_map = FeatureMap.load(folder / FEATURE_MAP_FILE)
        network = load_exported(folder, runtime, num_threads=num_threads)
        encoder = RawEncoder.load(folder / SERVING_ARTIFACT, feature_map, network.max_len)
        return cls(encoder, network)

    def score(self, request: Any) -> np.ndarray:
        """One probability per request row (float64, in input order)."""
        return self.network.score(self.encoder.encode(request))

    def rank(self, user: Mapping[str, Any], candidates: Sequence[Any] | pl.DataFrame) -> np.ndarray:
        """Scores of N candidates for one user request, its history encoded once.

        ``user`` holds the user-side columns of one request (profile values,
        ``timestamp``, the history lists); ``candidates`` is a list of raw item ids
        or a frame with ``item_id`` (and optionally the candidates' attributes).
        """
        if len(candidates) == 0:
            return np.empty(0, dtype=np.float64)
        inputs = self.encoder.encode_plain_ranking(user, candidates)  # None: not plain values
        if inputs is None:
            if not isinstance(candidates, pl.DataFrame):
                candidates = pl.DataFrame({ITEM_KEY_SOURCE: pl.Series(list(candidates))})
            user_frame = pl.DataFrame([{k: _cell(v) for k, v in user.items()}])
            inputs = self.encoder.encode_ranking(user_frame, candidates)
        return self.ranking.score(inputs)


def _cell(value: Any) -> Any:
    """A list value stays one cell of a one-row frame (not one row per element)."""
    return list(value) if isinstance(value, tuple | np.ndarray) else value
