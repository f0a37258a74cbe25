"""The scoring core of the registered model: a pandas frame of encoded ids -> click probabilities.

Why a scorer of our own rather than ``mlflow.pytorch``: its default torch.export
format fixes the history length, so a caller could not score histories of any
length. :class:`EncodedScorer` accepts one column per model feature (as in the
prepared parquet: sparse ids as integers, sequence features as lists of ids of
any length, oldest first), keeps the most recent ``max_len`` events of each
history, right-pads with 0 and scores in bounded chunks. Ids outside a
feature's vocabulary map to the out-of-vocabulary id, as unseen ids do in
training. Extra columns (``user_id``, ``label``, ...) are ignored.

The conversion is vectorised through Arrow (no per-row Python). This module
imports only din_model, torch, numpy, pandas and pyarrow: it is shipped inside
the registered model and loaded wherever the model is served; the MLflow
wrapper around it is the models-from-code file ``tasks/pyfunc_definition.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from din_model.data.specs.feature_map import OOV_ID, PADDING_ID

CHECKPOINT_ARTIFACT = "checkpoint"
SCORE_CHUNK_ROWS = 65_536


class InputError(ValueError):
    """The frame lacks a feature column or holds something that is not ids."""


def _clip_to_vocab(ids: np.ndarray, vocab_size: int, keep_padding: bool) -> np.ndarray:
    """Map ids outside ``[0, vocab_size)`` (and, for sparse features, 0) to OOV."""
    bad = (ids < 0) | (ids >= vocab_size)
    if not keep_padding:
        bad |= ids == PADDING_ID
    return np.where(bad, OOV_ID, ids)


def sparse_ids(column: pd.Series, name: str, vocab_size: int) -> np.ndarray:
    """One id per row; missing values become the OOV id."""
    try:
        values = pd.to_numeric(column, errors="raise")
    except (TypeError, ValueError) as exc:
        raise InputError(f"column '{name}': expected integer ids, got {column.dtype}") from exc
    ids = values.to_numpy(dtype=np.float64, na_value=OOV_ID)
    if not np.all(np.isfinite(ids)) or np.any(ids != np.floor(ids)):
        raise InputError(f"column '{name}': expected integer ids")
    return _clip_to_vocab(ids.astype(np.int64), vocab_size, keep_padding=False)


def padded_sequence(column: pd.Series, name: str, vocab_size: int, max_len: int) -> np.ndarray:
    """(rows, max_len) int64: the last ``max_len`` real events of each list, right-padded with 0.

    Trailing zeros of a list are padding and are dropped before trimming, so a
    frame that is already right-padded to a longer length keeps its events.
    """
    try:
        arrow = pa.array(column.to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(f"column '{name}': expected lists of integer ids") from exc
    if pa.types.is_large_list(arrow.type):
        arrow = arrow.cast(pa.list_(arrow.type.value_type))
    if not pa.types.is_list(arrow.type) and not pa.types.is_null(arrow.type):
        raise InputError(f"column '{name}': expected lists of integer ids, got {arrow.type}")
    rows = len(arrow)
    if pa.types.is_null(arrow.type) or rows == 0:
        return np.zeros((rows, max_len), dtype=np.int64)
    arrow = arrow.fill_null(pa.scalar([], type=arrow.type))
    offsets = arrow.offsets.to_numpy().astype(np.int64)
    flat_arrow = arrow.flatten()
    if not (pa.types.is_integer(flat_arrow.type) or pa.types.is_null(flat_arrow.type)):
        raise InputError(f"column '{name}': expected integer ids, got {flat_arrow.type}")
    flat = flat_arrow.fill_null(OOV_ID).to_numpy(zero_copy_only=False).astype(np.int64)
    starts, lengths = offsets[:-1] - offsets[0], np.diff(offsets)
    # effective length: up to the last non-padding id of the row
    row_of = np.repeat(np.arange(rows), lengths)
    position = np.arange(flat.size) - np.repeat(starts, lengths)
    last_real = np.zeros(rows, dtype=np.int64)
    real = flat != PADDING_ID
    np.maximum.at(last_real, row_of[real], position[real] + 1)
    keep = np.minimum(last_real, max_len)
    first_kept = starts + last_real - keep
    out = np.zeros((rows, max_len), dtype=np.int64)
    take_row = np.repeat(np.arange(rows), keep)
    take_col = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)
    out[take_row, take_col] = flat[np.repeat(first_kept, keep) + take_col]
    return _clip_to_vocab(out, vocab_size, keep_padding=True)


def history_length(config: dict[str, Any], feature_map: Any) -> int:
    """Events kept per history: the training cut (``train.max_len``) or the prepared length."""
    cut = (config.get("train") or {}).get("max_len")
    return min(int(cut), feature_map.max_len) if cut else int(feature_map.max_len)


def frame_to_inputs(
    frame: pd.DataFrame, feature_map: Any, max_len: int | None = None
) -> dict[str, np.ndarray]:
    """Model inputs (feature name -> int64 array) from a pandas frame, per ``feature_map``."""
    missing = [f.name for f in feature_map.features if f.name not in frame.columns]
    if missing:
        raise InputError(f"missing feature columns: {', '.join(missing)}")
    length = int(max_len or feature_map.max_len)
    inputs: dict[str, np.ndarray] = {}
    for spec in feature_map.features:
        vocab = feature_map.tables[spec.table].vocab_size
        if spec.kind == "sequence":
            inputs[spec.name] = padded_sequence(frame[spec.name], spec.name, vocab, length)
        else:
            inputs[spec.name] = sparse_ids(frame[spec.name], spec.name, vocab)
    return inputs


def trimmed_batch(inputs: dict[str, np.ndarray], start: int, stop: int, sequences: list[str]):
    """LongTensors of rows ``start:stop``, histories cut to the chunk's longest (as in training)."""
    import torch

    width = 1
    for name in sequences:
        used = np.flatnonzero((inputs[name][start:stop] != PADDING_ID).any(axis=0))
        if used.size:
            width = max(width, int(used[-1]) + 1)
    return {
        name: torch.from_numpy(
            np.ascontiguousarray(
                array[start:stop, :width] if name in sequences else array[start:stop]
            )
        )
        for name, array in inputs.items()
    }


class EncodedScorer:
    """A trained checkpoint that scores frames of encoded ids (see the module doc)."""

    def __init__(self, checkpoint: str | Path) -> None:
        from din_model.serving.loading import load_trained_model

        model, feature_map, config = load_trained_model(checkpoint)
        model.eval()
        self.model = model
        self.feature_map = feature_map
        self.max_len = history_length(config, feature_map)
        self.sequences = [f.name for f in feature_map.sequence_features]

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        """Click probability per row (float64, in input order)."""
        import torch

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        inputs = frame_to_inputs(frame, self.feature_map, self.max_len)
        rows = len(frame)
        scores = np.empty(rows, dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, rows, SCORE_CHUNK_ROWS):
                stop = min(rows, start + SCORE_CHUNK_ROWS)
                batch = trimmed_batch(inputs, start, stop, self.sequences)
                logits = self.model(batch)
                scores[start:stop] = torch.sigmoid(logits.double()).reshape(-1).numpy()
        return scores
