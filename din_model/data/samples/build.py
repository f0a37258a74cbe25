"""Protocol output -> the prepared splits: encoded id columns, list columns, audit columns.

The protocol gives int codes and history slices; this step gathers every
feature for every sample, learns the vocabularies from the train split only
(targets, negatives and histories), encodes all splits with them and builds
one polars frame per split. It also keeps, next to each split, the *audit*
columns that validation needs but the prepared data does not carry: the
target's position in time and the latest history event's time and position,
gathered from the history log with the same slices as the list columns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from din_model.data.canonical import context
from din_model.data.encoding.coded import CodedData
from din_model.data.encoding.hashing import (
    DEFAULT_HASH_SEED,
    HASH_FUNCTION,
    HashedVocabulary,
    build_hashed_vocabulary,
)
from din_model.data.encoding.vocabulary import (
    UserKey,
    Vocabulary,
    build_user_key,
    build_vocabulary,
    seen_mask,
)
from din_model.data.protocols.base import SPLIT_CODES, HistoryEvents, ProtocolResult, SampleIndex
from din_model.data.protocols.history import gather_index, list_column, segment_max
from din_model.data.samples.raw_inputs import RawInput
from din_model.data.specs.feature_map import OOV_ID, SPLITS, FeatureMap, TableSpec
from din_model.data.specs.spec import DERIVED_CONTEXT, DatasetSpec
from din_model.errors import DataError

log = logging.getLogger(__name__)

#: Audit columns (validation only, never written to the parquet files).
AUDIT_COLUMNS = ("target_order", "hist_max_order", "hist_max_timestamp")


@dataclass
class PreparedData:
    """The prepared splits in memory, before validation and writing."""

    splits: dict[str, pl.DataFrame]
    feature_map: FeatureMap
    report: dict[str, Any]
    audit: dict[str, pl.DataFrame]
    vocabularies: dict[str, Vocabulary]
    user_key: UserKey
    spec: DatasetSpec
    timings: dict[str, float] = field(default_factory=dict)
    #: where the adapters put rejected lines (copied to OUT/rejects/ by write_prepared)
    rejects_dir: Path | None = None
    #: what a served model needs to read raw requests (:mod:`raw_inputs`), set by prepare
    serving: ServingTables | None = None


@dataclass
class ServingTables:
    """The raw request schema, the item table and a few raw test rows (``serving/``)."""

    inputs: list[RawInput]
    items: pl.DataFrame
    example: pl.DataFrame


@dataclass
class _SplitCodes:
    """Per-sample codes of one split before encoding (sequences as flat values + offsets)."""

    sparse: dict[str, np.ndarray]
    sequences: dict[str, np.ndarray]
    offsets: np.ndarray
    audit: pl.DataFrame


def _gather(coded: CodedData, history: HistoryEvents, part: SampleIndex) -> _SplitCodes:
    spec = coded.spec
    sparse: dict[str, np.ndarray] = {}
    for decl in spec.group("user_profile"):
        sparse[decl.name] = coded.user_features[decl.name][part.user]
    for decl in spec.group("ad"):
        sparse[decl.name] = coded.item_features[decl.name][part.item]
    for decl in spec.group("context"):
        if decl.source in DERIVED_CONTEXT:
            # the derived domains are range(n): the raw value is the code
            sparse[decl.name] = context.derive(decl.source, part.timestamp).astype(np.int32)
        else:
            sparse[decl.name] = coded.interactions.columns[decl.name][part.source_row]
    offsets, index = gather_index(part.hist_start, part.hist_end)
    sequences = {f.name: history.columns[f.name][index] for f in spec.group("behaviour")}
    max_time, nonempty = segment_max(history.timestamp[index], offsets)
    max_order, _ = segment_max(history.order[index], offsets)
    audit = pl.DataFrame(
        {
            "target_order": part.order,
            "hist_max_order": pl.Series(max_order).set(pl.Series(~nonempty), None),
            "hist_max_timestamp": pl.Series(max_time).set(pl.Series(~nonempty), None),
        }
    )
    return _SplitCodes(sparse, sequences, offsets, audit)


def _train_vocabularies(
    coded: CodedData, train: _SplitCodes, hash_buckets: dict[str, int], hash_seed: int
) -> dict[str, Vocabulary]:
    """One vocabulary per table from the codes its features take in the train split.

    Tables named in ``hash_buckets`` get a hashed vocabulary instead (every raw
    value hashed, see :mod:`din_model.data.encoding.hashing`).
    """
    vocabularies = {}
    for table, decls in coded.spec.tables.items():
        dictionary = coded.tables[table]
        arrays = [
            train.sequences[d.name] if d.kind == "sequence" else train.sparse[d.name] for d in decls
        ]
        seen = seen_mask(dictionary.n_codes, *arrays)
        if table in hash_buckets:
            vocabularies[table] = build_hashed_vocabulary(
                table, dictionary, seen, hash_buckets[table], hash_seed
            )
        else:
            vocabularies[table] = build_vocabulary(table, dictionary, seen)
    return vocabularies


def _table_spec(table: str, vocabulary: Vocabulary) -> TableSpec:
    if isinstance(vocabulary, HashedVocabulary):
        return TableSpec(
            table,
            vocabulary.vocab_size,
            hash_buckets=vocabulary.buckets,
            hash_function=HASH_FUNCTION,
            hash_seed=vocabulary.seed,
        )
    return TableSpec(table, vocabulary.vocab_size)


def _frame(
    coded: CodedData,
    part: SampleIndex,
    codes: _SplitCodes,
    vocabularies: dict[str, Vocabulary],
    user_key: UserKey,
) -> pl.DataFrame:
    spec = coded.spec
    columns: dict[str, pl.Series] = {
        "user_id": pl.Series("user_id", user_key.encode(part.user), dtype=pl.Int32)
    }
    for group in ("user_profile", "ad", "context"):
        for decl in spec.group(group):
            ids = vocabularies[spec.table_of(decl.name)].encode(codes.sparse[decl.name])
            columns[decl.name] = pl.Series(decl.name, ids, dtype=pl.Int32)
    for decl in spec.group("behaviour"):
        ids = vocabularies[spec.table_of(decl.name)].encode(codes.sequences[decl.name])
        columns[decl.name] = list_column(decl.name, ids, codes.offsets)
    columns["label"] = pl.Series("label", part.label, dtype=pl.Int8)
    columns["timestamp"] = pl.Series("timestamp", part.timestamp, dtype=pl.Int64)
    return pl.DataFrame(list(columns.values()))


def assemble(
    coded: CodedData,
    result: ProtocolResult,
    *,
    dataset: str,
    layout: str,
    max_len: int,
    synthetic: bool,
    hash_buckets: dict[str, int] | None = None,
    hash_seed: int = DEFAULT_HASH_SEED,
) -> PreparedData:
    """Encode the protocol's samples into the three split frames and the feature map.

    ``hash_buckets`` (table name -> buckets, names already resolved) hashes
    those tables instead of learning their vocabularies from train.
    """
    spec = coded.spec
    samples = result.samples
    parts = {name: samples.take(samples.split == code) for name, code in SPLIT_CODES.items()}
    if len(parts["train"]) == 0:
        raise DataError("<interactions>", "at least one training sample", got="none")
    train_codes = _gather(coded, result.history, parts["train"])
    vocabularies = _train_vocabularies(coded, train_codes, dict(hash_buckets or {}), hash_seed)
    user_key = build_user_key(coded.users, samples.user)

    splits: dict[str, pl.DataFrame] = {}
    audit: dict[str, pl.DataFrame] = {}
    oov_targets: dict[str, float] = {}
    item_name = spec.item_key.name
    for name in SPLITS:
        codes = train_codes if name == "train" else _gather(coded, result.history, parts[name])
        splits[name] = _frame(coded, parts[name], codes, vocabularies, user_key)
        audit[name] = codes.audit
        if len(splits[name]):
            oov = splits[name][item_name] == OOV_ID
            oov_targets[name] = round(float(oov.mean()), 6)
        del codes
    del train_codes

    feature_map = FeatureMap(
        dataset=dataset,
        protocol=spec.protocol,
        max_len=max_len,
        tables={t: _table_spec(t, v) for t, v in vocabularies.items()},
        features=spec.feature_specs(),
        synthetic=synthetic,
        splits={name: len(frame) for name, frame in splits.items()},
        extra={
            "layout": layout,
            "spec": spec.family,
            "n_users": user_key.n_users,
            "context_timezone": "UTC",
            "omitted_features": coded.omitted_features,
            "vocab_dir": "vocab",
        },
    )
    report = {
        "samples": {name: len(frame) for name, frame in splits.items()},
        "positive_rate": {
            name: round(float(frame["label"].mean()), 6) if len(frame) else None
            for name, frame in splits.items()
        },
        "users_with_samples": user_key.n_users,
        "vocab_sizes": {t: v.vocab_size for t, v in vocabularies.items()},
        "oov_target_rate": oov_targets,
        "mean_history_length": {
            name: round(float(frame[spec.group("behaviour")[0].name].list.len().mean() or 0), 3)
            for name, frame in splits.items()
        },
        "omitted_features": coded.omitted_features,
        "hashing": {
            t: v.stats() for t, v in vocabularies.items() if isinstance(v, HashedVocabulary)
        },
        **result.report,
    }
    return PreparedData(
        splits=splits,
        feature_map=feature_map,
        report=report,
        audit=audit,
        vocabularies=vocabularies,
        user_key=user_key,
        spec=spec,
    )
