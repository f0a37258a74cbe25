"""A prepared split as pre-padded, contiguous integer tensors.

Training never builds a sample in Python: each split is read once into one
tensor per feature (sparse ``(N,)``, sequence ``(N, L)`` right-padded with 0)
and batches are cut from them by index (:mod:`din_model.tensors.batches`).
Sequences are assembled from the Arrow list offsets with NumPy, not row by row.

The parquet is checked against ``feature_map.json`` on the way: a missing
column, a wrong type, a null, an id outside its vocabulary or rows whose
sequences disagree in length stop the run with a DataError naming the file
and the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import DataError


@dataclass
class SplitTensors:
    """One split: feature tensors, labels and user keys, row-aligned.

    Ids are stored as int32 (half the memory of int64) and widened per batch.
    """

    path: Path
    sparse: dict[str, torch.Tensor]
    sequences: dict[str, torch.Tensor]
    lengths: torch.Tensor  # (N,) history length, shared by every sequence column
    label: torch.Tensor  # (N,) float32 in {0, 1}
    user: torch.Tensor  # (N,) int64 user key

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def width(self) -> int:
        """L: the padded history width (longest history, at most max_len)."""
        for tensor in self.sequences.values():
            return int(tensor.shape[1])
        return 0

    @property
    def features(self) -> dict[str, torch.Tensor]:
        return {**self.sparse, **self.sequences}

    @property
    def device(self) -> torch.device:
        return self.label.device

    def to(self, device: torch.device | str) -> SplitTensors:
        return self._map(lambda t: t.to(device))

    def rows(self, start: int, stop: int) -> SplitTensors:
        """Rows [start, stop) as views (no copy): a rank's shard, a benchmark's head."""
        return self._map(lambda t: t[start:stop])

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> SplitTensors:
        """The same split with ``fn`` applied to every row-aligned tensor."""
        return SplitTensors(
            path=self.path,
            sparse={name: fn(t) for name, t in self.sparse.items()},
            sequences={name: fn(t) for name, t in self.sequences.items()},
            lengths=fn(self.lengths),
            label=fn(self.label),
            user=fn(self.user),
        )


def _integer_column(table: pa.Table, name: str, path: Path) -> np.ndarray:
    column = table.column(name)
    if not pa.types.is_integer(column.type):
        raise DataError(path, "an integer column", column=name, got=str(column.type))
    if column.null_count:
        raise DataError(path, "no nulls", column=name, got=f"{column.null_count} nulls")
    return column.to_numpy()


def _list_column(table: pa.Table, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, flat values) of a list<int> column, sliced chunks handled by Arrow."""
    column = table.column(name)
    kind = column.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_integer(
        kind.value_type
    ):
        raise DataError(path, "a list of integers", column=name, got=str(kind))
    if column.null_count:
        raise DataError(path, "no null lists", column=name, got=f"{column.null_count} nulls")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = array.flatten()
    if values.null_count:
        raise DataError(path, "no null ids inside the lists", column=name)
    lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    return lengths, values.to_numpy(zero_copy_only=False)


def pad_sequences(lengths: np.ndarray, values: np.ndarray, width: int) -> np.ndarray:
    """Right-padded (N, width) int32 matrix; rows longer than ``width`` keep their last events.

    Row-major boolean-mask assignment fills every row's valid prefix in one
    vectorised step, because the flat values are already in row order.
    """
    n = lengths.shape[0]
    out = np.zeros((n, width), dtype=np.int32)
    if width == 0 or n == 0:
        return out
    kept = np.minimum(lengths, width)
    if (lengths > width).any():
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        position = np.arange(values.shape[0]) - np.repeat(starts, lengths)
        values = values[position >= np.repeat(lengths - kept, lengths)]
    mask = np.arange(width)[None, :] < kept[:, None]
    out[mask] = values
    return out


def _check_ids(values: np.ndarray, vocab_size: int, name: str, path: Path) -> None:
    if values.size == 0:
        return
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= vocab_size:
        bad = low if low < 0 else high
        raise DataError(
            path, f"ids in [0, {vocab_size}) (vocabulary of its table)", column=name, got=str(bad)
        )


def load_split(
    path: str | Path, feature_map: FeatureMap, max_len: int | None = None
) -> SplitTensors:
    """Read one split parquet into :class:`SplitTensors`, checked against ``feature_map``.

    ``max_len`` (default: the feature map's) caps the history width; the
    width is the longest history in this split, so short-history data does
    not carry columns of padding.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "a split parquet written by `din prepare`", got="no such file")
    limit = feature_map.max_len if max_len is None else min(max_len, feature_map.max_len)
    wanted = [f.name for f in feature_map.features] + [feature_map.label, feature_map.user_key]
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, "a readable parquet file", got=str(exc)) from exc
    missing = [name for name in wanted if name not in schema.names]
    if missing:
        raise DataError(
            path,
            "the columns listed in feature_map.json",
            column=missing[0],
            got=f"missing (file has {', '.join(schema.names)})",
        )
    table = pq.read_table(path, columns=wanted)

    sparse: dict[str, torch.Tensor] = {}
    for spec in feature_map.sparse_features:
        values = _integer_column(table, spec.name, path)
        _check_ids(values, feature_map.tables[spec.table].vocab_size, spec.name, path)
        sparse[spec.name] = torch.from_numpy(values.astype(np.int32))

    sequences: dict[str, torch.Tensor] = {}
    shared_lengths: np.ndarray | None = None
    first_sequence = None
    for spec in feature_map.sequence_features:
        lengths, values = _list_column(table, spec.name, path)
        _check_ids(values, feature_map.tables[spec.table].vocab_size, spec.name, path)
        if shared_lengths is None:
            shared_lengths, first_sequence = lengths, spec.name
        elif not np.array_equal(lengths, shared_lengths):
            row = int(np.flatnonzero(lengths != shared_lengths)[0])
            raise DataError(
                path,
                f"the same length as '{first_sequence}' in every row",
                column=spec.name,
                got=f"{lengths[row]} vs {shared_lengths[row]} in row {row}",
            )
        if lengths.size and int(lengths.max()) > feature_map.max_len:
            raise DataError(
                path,
                f"histories of at most max_len={feature_map.max_len} events",
                column=spec.name,
                got=str(int(lengths.max())),
            )
        # At least one column, so that models never see an (N, 0) history.
        width = max(1, min(int(lengths.max()) if lengths.size else 0, limit))
        sequences[spec.name] = torch.from_numpy(pad_sequences(lengths, values, width))

    n = table.num_rows
    if shared_lengths is None:
        shared_lengths = np.zeros(n, dtype=np.int64)
    label = _integer_column(table, feature_map.label, path)
    if label.size and not np.isin(label, (0, 1)).all():
        bad = label[~np.isin(label, (0, 1))][0]
        raise DataError(path, "labels 0 or 1", column=feature_map.label, got=str(bad))
    user = _integer_column(table, feature_map.user_key, path)

    return SplitTensors(
        path=path,
        sparse=sparse,
        sequences=sequences,
        lengths=torch.from_numpy(np.minimum(shared_lengths, limit).astype(np.int32)),
        label=torch.from_numpy(label.astype(np.float32)),
        user=torch.from_numpy(user.astype(np.int64)),
    )


def load_prepared_split(
    data_dir: str | Path, split: str, feature_map: FeatureMap, max_len: int | None = None
) -> SplitTensors:
    """``<data_dir>/<split>.parquet`` as tensors; its row count must match feature_map.json."""
    tensors = load_split(Path(data_dir) / f"{split}.parquet", feature_map, max_len=max_len)
    expected = feature_map.splits.get(split)
    if isinstance(expected, int) and expected != len(tensors):
        raise DataError(
            tensors.path,
            f"{expected} rows as feature_map.json records for split '{split}'",
            got=f"{len(tensors)} rows",
        )
    return tensors
