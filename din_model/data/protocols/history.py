"""Vectorised history machinery shared by every protocol.

Events are sorted once per user by (timestamp, line), giving one flat array per
field; a sample's history is then a slice ``[start, end)`` of that array, the
last ``max_len`` events before its target. Turning millions of slices into
list columns is numpy index arithmetic (one ``repeat`` and one ``arange`` for
all rows) plus ``pyarrow.LargeListArray.from_arrays``, which polars adopts
without copying. Nothing here loops over rows in Python.

Measured on 2 cores (shared with other jobs): 3M slices with 43M history
events -> index + one list column in about 2 s; the index is computed once
per split and reused for every sequence column and for the audit timestamps.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

_INT64_SAFE = 1 << 62


def sort_events(user: np.ndarray, timestamp: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Permutation that sorts events by (user, timestamp, line); stable for full ties.

    A single stable argsort on a combined int64 key (user, timestamp) applied to
    the events in line order is about 2.5x faster than ``np.lexsort`` on three
    keys; the lexsort is the fallback when the combined key could overflow.
    """
    if len(user) == 0:
        return np.zeros(0, dtype=np.int64)
    by_line = np.argsort(line, kind="stable")
    t_min = int(timestamp.min())
    t_span = int(timestamp.max()) - t_min + 1
    if (int(user.max()) + 1) * t_span < _INT64_SAFE:
        key = user[by_line].astype(np.int64) * t_span + (timestamp[by_line] - t_min)
        return by_line[np.argsort(key, kind="stable")]
    return np.lexsort((line, timestamp, user))


def time_order(timestamp: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Each event's rank in time over all users: (timestamp, line) order, ties by position.

    Computed independently of the per-user sort, so validation can compare a
    history's latest event with its target without trusting the slicing code.
    """
    order = np.empty(len(timestamp), dtype=np.int64)
    order[np.lexsort((line, timestamp))] = np.arange(len(timestamp), dtype=np.int64)
    return order


def user_offsets(sorted_user: np.ndarray, n_users: int) -> np.ndarray:
    """``offsets[u]:offsets[u + 1]`` is user ``u``'s block in the sorted event array."""
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(sorted_user, minlength=n_users), out=offsets[1:])
    return offsets


def window_start(block_start: np.ndarray, end: np.ndarray, max_len: int) -> np.ndarray:
    """Start of the last ``max_len`` events before ``end``, never before the user's block."""
    return np.maximum(block_start, end - max_len)


def gather_index(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """List offsets and flat event indices of the slices ``[start, end)``, oldest first.

    ``index[offsets[i]:offsets[i + 1]] == arange(start[i], end[i])``: computed as
    ``repeat(start - offsets[:-1], length) + arange(total)`` without a row loop.
    """
    lengths = (end - start).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    index = np.repeat(start.astype(np.int64) - offsets[:-1], lengths)
    index += np.arange(offsets[-1], dtype=np.int64)
    return offsets, index


def list_column(name: str, values: np.ndarray, offsets: np.ndarray) -> pl.Series:
    """A polars ``List(Int32)`` column from flat values and int64 offsets (zero-copy)."""
    array = pa.LargeListArray.from_arrays(
        pa.array(offsets, type=pa.int64()), pa.array(values.astype(np.int32, copy=False))
    )
    return pl.Series(name, pl.from_arrow(array))


def segment_max(values: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice maximum of ``values`` and the mask of non-empty slices (max undefined there)."""
    lengths = np.diff(offsets)
    nonempty = lengths > 0
    result = np.zeros(len(lengths), dtype=values.dtype)
    if values.size:
        result[nonempty] = np.maximum.reduceat(values, offsets[:-1][nonempty])
    return result, nonempty
