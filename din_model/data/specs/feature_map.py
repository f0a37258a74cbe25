"""``feature_map.json``: the contract between the prepared data and the models.

A prepared directory holds ``train/valid/test.parquet`` and this map. Every
categorical feature is an integer column of the parquet, re-indexed through a
*table* (a vocabulary): id 0 is padding, id 1 is the out-of-vocabulary id for
values not seen in training, known values are 2..vocab_size-1. Sequence
features (the behaviour group) are list columns, oldest event first, at most
``max_len`` long, and share their table with a target feature of the ad group,
so that ``hist_item_id`` and ``item_id`` look up the same embedding rows.

The column ``user_id`` is the user key (1..n_users over all users of the
prepared data): GAUC groups by it and predictions carry it. It is not a model
input unless a feature lists it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from din_model.errors import DataError

GROUPS = ("user_profile", "behaviour", "ad", "context")
PADDING_ID = 0
OOV_ID = 1
FIRST_KNOWN_ID = 2
FEATURE_MAP_FILE = "feature_map.json"
SPLITS = ("train", "valid", "test")

Group = Literal["user_profile", "behaviour", "ad", "context"]


@dataclass(frozen=True)
class TableSpec:
    """One embedding vocabulary; several features may share it.

    A *hashed* table (``hash_buckets`` set, see :mod:`din_model.data.encoding.hashing`)
    maps a raw value to ``2 + hash(raw) mod hash_buckets`` with the recorded
    function and seed instead of a learned vocabulary; its ``vocab_size`` is
    ``2 + hash_buckets``. Maps written before hashing existed load unchanged.
    """

    name: str
    vocab_size: int
    padding_id: int = PADDING_ID
    oov_id: int = OOV_ID
    hash_buckets: int | None = None
    hash_function: str | None = None
    hash_seed: int | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """One model input column.

    ``kind`` is ``sparse`` (one id per sample) or ``sequence`` (a list of ids).
    A sequence names its ``target``: the ad-group feature it is compared with
    by DIN's activation unit (same table).
    """

    name: str
    group: Group
    kind: Literal["sparse", "sequence"]
    table: str
    target: str | None = None


@dataclass
class FeatureMap:
    """Vocabularies, feature groups and sequence length of a prepared dataset."""

    dataset: str
    protocol: str
    max_len: int
    tables: dict[str, TableSpec]
    features: list[FeatureSpec]
    synthetic: bool = False
    label: str = "label"
    user_key: str = "user_id"
    splits: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    # -- views -------------------------------------------------------------
    def group(self, group: Group) -> list[FeatureSpec]:
        """Features of one of the four groups, in declaration order."""
        return [f for f in self.features if f.group == group]

    @property
    def sparse_features(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.kind == "sparse"]

    @property
    def sequence_features(self) -> list[FeatureSpec]:
        return [f for f in self.features if f.kind == "sequence"]

    def feature(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def shared_tables(self) -> dict[str, list[str]]:
        """Table name -> the features that look it up (more than one = shared)."""
        shared: dict[str, list[str]] = {}
        for spec in self.features:
            shared.setdefault(spec.table, []).append(spec.name)
        return shared

    # -- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "synthetic": self.synthetic,
            "max_len": self.max_len,
            "label": self.label,
            "user_key": self.user_key,
            "tables": {name: asdict(t) for name, t in self.tables.items()},
            "features": [asdict(f) for f in self.features],
            "groups": {g: [f.name for f in self.group(g)] for g in GROUPS},
            "shared_tables": self.shared_tables,
            "splits": self.splits,
            "extra": self.extra,
        }

    def save(self, path: str | Path) -> None:
        from din_model.io.atomic import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def from_dict(
        cls, payload: dict[str, Any], source: str | Path = FEATURE_MAP_FILE
    ) -> FeatureMap:
        try:
            tables = {name: TableSpec(**spec) for name, spec in payload["tables"].items()}
            features = [FeatureSpec(**spec) for spec in payload["features"]]
            feature_map = cls(
                dataset=payload["dataset"],
                protocol=payload["protocol"],
                max_len=int(payload["max_len"]),
                tables=tables,
                features=features,
                synthetic=bool(payload.get("synthetic", False)),
                label=payload.get("label", "label"),
                user_key=payload.get("user_key", "user_id"),
                splits=dict(payload.get("splits", {})),
                extra=dict(payload.get("extra", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                source, "a feature map with tables, features and max_len", got=repr(exc)
            ) from exc
        feature_map.check(source)
        return feature_map

    @classmethod
    def load(cls, path: str | Path) -> FeatureMap:
        path = Path(path)
        if path.is_dir():
            path = path / FEATURE_MAP_FILE
        if not path.is_file():
            raise DataError(path, "a feature_map.json written by `din prepare`", got="no such file")
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(path, "valid JSON", line=exc.lineno, got=exc.msg) from exc
        return cls.from_dict(payload, source=path)

    def check(self, source: str | Path = FEATURE_MAP_FILE) -> None:
        """Reject maps whose features name unknown tables, groups or targets."""
        names = {f.name for f in self.features}
        for table in self.tables.values():
            if table.hash_buckets is not None and table.vocab_size != 2 + table.hash_buckets:
                raise DataError(
                    source,
                    f"vocab_size = 2 + hash_buckets ({2 + table.hash_buckets}) for a hashed table",
                    column=table.name,
                    got=str(table.vocab_size),
                )
        for spec in self.features:
            if spec.group not in GROUPS:
                raise DataError(source, f"group in {GROUPS}", column=spec.name, got=spec.group)
            if spec.table not in self.tables:
                raise DataError(
                    source, "a table listed under 'tables'", column=spec.name, got=spec.table
                )
            if spec.kind == "sequence":
                if spec.target not in names:
                    raise DataError(
                        source,
                        "a sequence target that is a feature",
                        column=spec.name,
                        got=str(spec.target),
                    )
                if self.feature(spec.target).table != spec.table:
                    raise DataError(
                        source,
                        "a sequence sharing its target's table",
                        column=spec.name,
                        got=spec.table,
                    )
