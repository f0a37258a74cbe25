"""What a scoring network takes, and the one preparation every runtime applies to it.

Every runtime of :mod:`din_model.serving.network_runtime` (eager PyTorch, ONNX,
TorchScript) takes the same inputs: one integer array per model feature, in
the feature map's order, sparse features (B,) and sequence features (B, W)
right-padded with the padding id 0 (what the prepared data and the raw-request
encoder produce). :class:`NetworkSignature` says which those are; it is built
from a checkpoint's feature map or read back from an export's manifest, so an
exported network needs no checkpoint to be fed.

:func:`network_batch` is where the training-time history cut lives for the
runtimes: histories longer than ``max_len`` keep their most recent ``max_len``
events (as training does), and trailing all-padding columns are trimmed to the
chunk's longest history (as training trims each batch). The
exported graphs themselves do not cut: they score whatever width they get, so a
caller that feeds ``model.onnx`` directly must cut to ``max_len`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from din_model.data.specs.feature_map import PADDING_ID


class InputError(ValueError):
    """A request or an input array lacks a column or holds something other than expected."""


def history_length(config: dict[str, Any], feature_map: Any) -> int:
    """Events kept per history: the training cut (``train.max_len``) or the prepared length."""
    cut = (config.get("train") or {}).get("max_len")
    return min(int(cut), feature_map.max_len) if cut else int(feature_map.max_len)


@dataclass(frozen=True)
class NetworkInput:
    """One model input: its name, ``sparse`` (B,) or ``sequence`` (B, W), and its vocabulary."""

    name: str
    kind: str
    vocab_size: int

    @property
    def is_sequence(self) -> bool:
        return self.kind == "sequence"


@dataclass(frozen=True)
class NetworkSignature:
    """The inputs of a scoring network, in order, and the history length it was trained on."""

    inputs: tuple[NetworkInput, ...]
    max_len: int

    @classmethod
    def from_checkpoint_parts(cls, feature_map: Any, config: dict[str, Any]) -> NetworkSignature:
        """From a loaded checkpoint's feature map and resolved config."""
        inputs = tuple(
            NetworkInput(spec.name, spec.kind, int(feature_map.tables[spec.table].vocab_size))
            for spec in feature_map.features
        )
        return cls(inputs, history_length(config, feature_map))

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> NetworkSignature:
        """From the ``inputs`` / ``max_len`` entries of an export manifest."""
        inputs = tuple(
            NetworkInput(str(entry["name"]), str(entry["kind"]), int(entry["vocab_size"]))
            for entry in payload["inputs"]
        )
        return cls(inputs, int(payload["max_len"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [
                {"name": spec.name, "kind": spec.kind, "vocab_size": spec.vocab_size}
                for spec in self.inputs
            ],
            "max_len": self.max_len,
        }

    @property
    def names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    @property
    def sequence_names(self) -> list[str]:
        return [spec.name for spec in self.inputs if spec.is_sequence]


def _as_ids(value: Any, spec: NetworkInput) -> np.ndarray:
    """``value`` as a C-contiguous int64 array of the input's rank; InputError otherwise."""
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise InputError(f"input '{spec.name}': expected integer ids, got dtype {array.dtype}")
    rank = 2 if spec.is_sequence else 1
    if array.ndim != rank:
        shape = "(batch, history)" if spec.is_sequence else "(batch,)"
        raise InputError(f"input '{spec.name}': expected shape {shape}, got {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= spec.vocab_size):
        raise InputError(
            f"input '{spec.name}': ids must lie in [0, {spec.vocab_size}) (map unknown ids to "
            f"the OOV id before scoring); got [{array.min()}, {array.max()}]"
        )
    return np.ascontiguousarray(array, dtype=np.int64)


def history_lengths(sequences: list[np.ndarray]) -> np.ndarray:
    """(B,) events of each row: up to its last non-padding id in any sequence feature.

    The sequences of a row are aligned (one behaviour per position), so their
    common length is the furthest real id; zeros before it are kept, as in training.
    """
    rows = sequences[0].shape[0]
    lengths = np.zeros(rows, dtype=np.int64)
    for array in sequences:
        width = array.shape[1]
        if width == 0:
            continue
        real = array != PADDING_ID
        last = np.where(real.any(axis=1), width - np.argmax(real[:, ::-1], axis=1), 0)
        np.maximum(lengths, last, out=lengths)
    return lengths


def cut_histories(sequences: list[np.ndarray], max_len: int) -> list[np.ndarray]:
    """The sequences cut to the rows' most recent ``max_len`` events and trimmed of padding.

    The width becomes the longest kept history (at least 1, so no graph ever
    sees an empty axis); every row stays right-padded.
    """
    lengths = history_lengths(sequences)
    longest = int(lengths.max()) if lengths.size else 0
    if longest <= max_len:
        width = max(longest, 1)
        if sequences[0].shape[1] >= width:
            return [np.ascontiguousarray(array[:, :width]) for array in sequences]
        pad = width - sequences[0].shape[1]  # an empty history axis: one padding column
        return [np.pad(array, ((0, 0), (0, pad))) for array in sequences]
    # Row b keeps columns [start_b, start_b + max_len): its last max_len events, then the
    # padding that follows them. Every index stays inside the array because the width is
    # at least the longest history, which exceeds max_len.
    start = np.maximum(lengths - max_len, 0)
    columns = start[:, None] + np.arange(max_len)
    rows = np.arange(lengths.size)[:, None]
    return [np.ascontiguousarray(array[rows, columns]) for array in sequences]


def validated_inputs(
    inputs: Mapping[str, Any], signature: NetworkSignature
) -> tuple[int, list[np.ndarray]]:
    """(rows, one int64 array per input in signature order), checked, not yet cut.

    Checks that every input is there with the right rank, one batch size and one
    history width, and ids inside the vocabulary (the runtimes never map ids:
    that is the encoder's job). Extra keys (``label``, ``user_id``) are ignored.
    """
    missing = [name for name in signature.names if name not in inputs]
    if missing:
        raise InputError(f"missing inputs: {', '.join(missing)}")
    arrays = [_as_ids(inputs[spec.name], spec) for spec in signature.inputs]
    rows = {spec.name: array.shape[0] for spec, array in zip(signature.inputs, arrays, strict=True)}
    if len(set(rows.values())) > 1:
        raise InputError(f"inputs disagree on the batch size: {rows}")
    widths = {
        spec.name: array.shape[1]
        for spec, array in zip(signature.inputs, arrays, strict=True)
        if spec.is_sequence
    }
    if len(set(widths.values())) > 1:
        raise InputError(f"sequence inputs disagree on the history width: {widths}")
    return (arrays[0].shape[0] if arrays else 0), arrays


def network_batch(
    arrays: list[np.ndarray], signature: NetworkSignature, start: int, stop: int
) -> list[np.ndarray]:
    """Rows ``start:stop`` of :func:`validated_inputs`' arrays, histories cut as in training."""
    chunk = [array[start:stop] for array in arrays]
    positions = [i for i, spec in enumerate(signature.inputs) if spec.is_sequence]
    if positions:
        cut = cut_histories([chunk[i] for i in positions], signature.max_len)
        for i, array in zip(positions, cut, strict=True):
            chunk[i] = array
    return [np.ascontiguousarray(array) for array in chunk]
