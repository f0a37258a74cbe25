"""Hashed tables: raw id -> ``2 + stable_hash(raw) mod buckets``, for vocabularies too big to keep.

A learned vocabulary gives every value seen in training its own embedding row
and sends the rest to OOV. For tables with tens or hundreds of millions of ids
(the item and user ids of a large shop) that table no longer fits; a *hashed*
table has a fixed number of rows instead. Ids 0 (padding) and 1 (OOV) stay
reserved; a raw value maps to ``2 + h(raw) mod buckets``, the same function for
train, valid and test, histories and candidates. There is no vocabulary file
to keep: feature_map.json records the function, seed and buckets, which is all
a scorer needs. Unseen values (new items) hash like seen ones instead of all
sharing the OOV row; distinct values that land in one bucket share its row
(the cost measured in the report). A missing value (null) is still OOV.

The hash must give the same id on every process, machine and library version,
so it cannot be Python's ``hash()`` (salted per process) nor polars' ``hash``
(documented as unstable across versions). It is written out here:

    h = FNV_OFFSET ^ splitmix64(seed + GOLDEN)         # keyed start state
    for each byte b of the UTF-8 text of the raw value:  # FNV-1a, 64 bit
        h = (h ^ b) * FNV_PRIME  (mod 2**64)
    h = splitmix64_finaliser(h ^ len(bytes))             # avalanche the low bits

over the value's text (integers in decimal, so ``123`` and ``"123"`` agree
whatever type an adapter reads). It runs vectorised over the *distinct* values
of a table (the dictionary), one NumPy step per byte position with the values
sorted by length, never per row. ``reference_hash`` is the same function in
plain Python, used by the tests as the definition.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from din_model.data.encoding.vocabulary import Dictionary, Vocabulary
from din_model.data.specs.feature_map import FIRST_KNOWN_ID, OOV_ID
from din_model.errors import ConfigError

log = logging.getLogger(__name__)

#: Recorded in feature_map.json; bump the version if the definition ever changes.
HASH_FUNCTION = "fnv1a64-splitmix64-utf8/v1"
DEFAULT_HASH_SEED = 0
#: Ids are Int32 in the prepared parquet: 2 + (buckets - 1) must fit.
MAX_BUCKETS = 2**31 - 1 - FIRST_KNOWN_ID

_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


# -- the hash function -------------------------------------------------------------
def _splitmix64_scalar(z: int) -> int:
    z &= _MASK
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def _start_state(seed: int) -> int:
    return _FNV_OFFSET ^ _splitmix64_scalar(seed + _GOLDEN)


def reference_hash(text: str, seed: int = DEFAULT_HASH_SEED) -> int:
    """The 64-bit hash of one value's text, in plain Python (the definition)."""
    data = text.encode("utf-8")
    h = _start_state(seed)
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return _splitmix64_scalar(h ^ len(data))


def _splitmix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _utf8_buffers(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (n+1,) int64, bytes uint8) of the values' UTF-8 text, straight from Arrow."""
    text = values.cast(pl.String())
    if text.null_count():
        raise ValueError(f"cannot hash the nulls of {values.name!r}: nulls map to OOV")
    array = text.to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    array = pc.cast(array, pa.large_string())
    n, offset = len(array), array.offset
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[offset : offset + n + 1]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return offsets, data


def stable_hash(values: pl.Series, seed: int = DEFAULT_HASH_SEED) -> np.ndarray:
    """uint64 hash of every value's text, equal to :func:`reference_hash` value by value.

    The values are visited longest first, so that byte position ``j`` updates
    a contiguous prefix (the values at least ``j + 1`` bytes long): the work is
    one vectorised step per byte position and the total bytes, not per value.
    """
    offsets, data = _utf8_buffers(values)
    lengths = np.diff(offsets)
    n = lengths.shape[0]
    order = np.argsort(-lengths, kind="stable")
    starts = offsets[:-1][order]
    sorted_lengths = lengths[order]
    h = np.full(n, _start_state(seed), dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    longest = int(sorted_lengths[0]) if n else 0
    # active[j]: how many values have more than j bytes (a prefix of the sorted order)
    active = np.searchsorted(-sorted_lengths, -np.arange(longest), side="left")
    for position in range(longest):
        count = int(active[position])
        head = h[:count]
        head ^= data[starts[:count] + position].astype(np.uint64)
        head *= prime
    h = _splitmix64(h ^ sorted_lengths.astype(np.uint64))
    out = np.empty(n, dtype=np.uint64)
    out[order] = h
    return out


def hashed_ids(values: pl.Series, buckets: int, seed: int = DEFAULT_HASH_SEED) -> np.ndarray:
    """Model ids ``2 + hash mod buckets`` (int32) of every value."""
    check_buckets("hash buckets", buckets)
    buckets_of = stable_hash(values, seed) % np.uint64(buckets)  # < MAX_BUCKETS: fits int32
    return buckets_of.astype(np.int32) + np.int32(FIRST_KNOWN_ID)


# -- which tables are hashed ----------------------------------------------------------
def check_buckets(where: str, buckets: Any) -> int:
    if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)):
        raise ConfigError(
            f"{where}: expected a positive integer number of buckets, got {buckets!r}"
        )
    if not 1 <= int(buckets) <= MAX_BUCKETS:
        raise ConfigError(f"{where}: buckets must be in 1..{MAX_BUCKETS:,}, got {buckets}")
    return int(buckets)


def parse_hash_buckets(entries: Iterable[str]) -> dict[str, int]:
    """``["item=1000000", "cate=4096"]`` (the repeatable CLI option) -> {name: buckets}."""
    parsed: dict[str, int] = {}
    for entry in entries:
        name, sep, value = str(entry).partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(
                f"--hash-buckets {entry!r}: expected TABLE=BUCKETS, e.g. item=1000000"
            )
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise ConfigError(
                f"--hash-buckets {entry!r}: BUCKETS must be an integer, got {value!r}"
            ) from None
        parsed[name] = check_buckets(f"--hash-buckets {entry!r}", number)
    return parsed


def resolve_hash_tables(
    requested: Mapping[str, int] | None, tables: Iterable[str]
) -> dict[str, int]:
    """Table name -> buckets; ``item`` also names the table ``item_id``.

    A name that is neither a table nor a table without its ``_id`` suffix is a
    ConfigError listing the tables of the dataset.
    """
    known = list(tables)
    resolved: dict[str, int] = {}
    for name, buckets in (requested or {}).items():
        table = name if name in known else f"{name}_id" if f"{name}_id" in known else None
        if table is None:
            raise ConfigError(
                f"hash buckets for unknown table {name!r}; tables of this dataset: "
                f"{', '.join(known)} (the `_id` suffix may be left out)"
            )
        if table in resolved:
            raise ConfigError(f"hash buckets given twice for table {table!r}")
        resolved[table] = check_buckets(f"hash buckets of {table!r}", buckets)
    return resolved


# -- hashed vocabularies ---------------------------------------------------------------
@dataclass(frozen=True)
class HashedVocabulary(Vocabulary):
    """A :class:`Vocabulary` whose ids come from the hash, with ``buckets`` rows after 0 and 1.

    ``lookup`` covers every code (every distinct raw value of the data, seen in
    training or not); ``known`` still marks the values seen in training, for
    the collision statistics.
    """

    buckets: int
    seed: int

    has_file = False  # no raw -> id file: the function in feature_map.json is the mapping

    @property
    def vocab_size(self) -> int:
        return FIRST_KNOWN_ID + self.buckets

    def stats(self) -> dict[str, Any]:
        """Collisions among all distinct values and among the values seen in training."""
        ids = self.lookup[: len(self.known)]

        def count(mask: np.ndarray) -> dict[str, int | float]:
            values = int(mask.sum())
            used = int(np.unique(ids[mask]).size)
            return {
                "values": values,
                "buckets_used": used,
                "collisions": values - used,
                "expected_collisions": round(expected_collisions(values, self.buckets), 1),
            }

        return {
            "buckets": self.buckets,
            "function": HASH_FUNCTION,
            "seed": self.seed,
            "all_values": count(np.ones(len(self.known), dtype=bool)),
            "train_values": count(self.known),
        }


def expected_collisions(values: int, buckets: int) -> float:
    """Values that share a bucket with another under a uniform hash: n - m(1 - (1 - 1/m)^n)."""
    if values == 0:
        return 0.0
    return (
        values - buckets * -np.expm1(values * np.log1p(-1.0 / buckets))
        if buckets > 1
        else values - 1
    )


def build_hashed_vocabulary(
    table: str, dictionary: Dictionary, seen: np.ndarray, buckets: int, seed: int
) -> HashedVocabulary:
    """Hash every distinct value of ``dictionary``; the null code stays OOV."""
    lookup = np.full(dictionary.n_codes, OOV_ID, dtype=np.int32)
    lookup[: len(dictionary.values)] = hashed_ids(dictionary.values, buckets, seed)
    known = seen[: len(dictionary.values)].copy()
    vocabulary = HashedVocabulary(table, dictionary, lookup, known, buckets, seed)
    stats = vocabulary.stats()
    log.info(
        "table %s hashed into %s buckets: %s distinct values (%s collide), %s seen in train "
        "(%s collide)",
        table,
        f"{buckets:,}",
        f"{stats['all_values']['values']:,}",
        f"{stats['all_values']['collisions']:,}",
        f"{stats['train_values']['values']:,}",
        f"{stats['train_values']['collisions']:,}",
    )
    return vocabulary
