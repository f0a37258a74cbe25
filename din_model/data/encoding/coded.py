"""Canonical tables -> integer-coded arrays, the only input the protocols see.

All string handling happens here, once per distinct value (a polars Enum cast
per column); from then on the protocols, the vocabulary and the assembly work
on numpy int arrays. Each table's :class:`Dictionary` is the union of every
source that feeds it, so a behaviour sequence and its target use the same
codes (``hist_cate_id`` and ``cate_id`` both index the ``cate_id`` table).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from din_model.data.canonical import context
from din_model.data.canonical.schema import BEHAVIOR_COLUMNS, CanonicalData
from din_model.data.encoding.vocabulary import Dictionary
from din_model.data.specs.spec import DERIVED_CONTEXT, ITEM_KEY_SOURCE, DatasetSpec
from din_model.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class EventTable:
    """Int-coded events in source order; ``columns`` are keyed by feature name."""

    user: np.ndarray  # int32 user codes
    timestamp: np.ndarray  # int64 unix seconds
    line: np.ndarray  # int64 tie-breaker (source position)
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class CodedData:
    """What the protocols and the assembly need, with every id already an int code.

    ``interactions`` carries ``item`` (item codes), ``rating`` (float64, NaN when
    missing), ``label`` (int8, -1 when missing) and one column per interaction
    context feature (e.g. ``pid``). ``item_features`` maps every ad feature (and,
    for item-event protocols, every behaviour feature) to an array indexed by
    item code; ``user_features`` maps profile features to arrays indexed by user
    code. ``behaviors`` holds the separate behaviour log of day-split data.
    """

    spec: DatasetSpec
    users: Dictionary
    tables: dict[str, Dictionary]
    interactions: EventTable
    item_features: dict[str, np.ndarray]
    user_features: dict[str, np.ndarray]
    behaviors: EventTable | None
    omitted_features: list[str]

    @property
    def n_items(self) -> int:
        return len(self.tables[self.spec.item_key.name].values)


def _origin(data: CanonicalData) -> str:
    return str(data.source_files[0]) if data.source_files else f"<{data.dataset} canonical data>"


def omitted_optional_features(data: CanonicalData, spec: DatasetSpec) -> list[str]:
    """Optional profile features whose source column this layout does not provide."""
    return [
        f.name
        for f in spec.group("user_profile")
        if f.optional and f.source not in data.users.columns
    ]


class _Frames:
    """The canonical tables by name, with column access that names what is missing."""

    def __init__(self, data: CanonicalData, behaviors: pl.DataFrame | None, family: str) -> None:
        self.origin = _origin(data)
        self.family = family
        self.tables = {"interactions": data.interactions, "items": data.items, "users": data.users}
        if behaviors is not None:
            self.tables["behaviors"] = behaviors

    def column(self, table: str, name: str) -> pl.Series:
        frame = self.tables[table]
        if name not in frame.columns:
            raise DataError(
                self.origin,
                f"column '{name}' in the canonical {table} table for the {self.family} spec",
                column=name,
                got=f"columns {frame.columns}",
            )
        return frame[name]


def _dictionaries(spec: DatasetSpec, frames: _Frames) -> dict[str, Dictionary]:
    """One dictionary per table over every canonical column that feeds it."""
    history_table = "items" if spec.protocol != "day_split" else "behaviors"
    feeds: dict[str, list[pl.Series]] = {}
    for decl in spec.features:
        sources = feeds.setdefault(spec.table_of(decl.name), [])
        if decl.group == "user_profile":
            sources.append(frames.column("users", decl.source))
        elif decl.group == "ad":
            sources.append(frames.column("items", decl.source))
            if decl.source == ITEM_KEY_SOURCE:
                sources.append(frames.column("interactions", ITEM_KEY_SOURCE))
        elif decl.group == "behaviour":
            sources.append(frames.column(history_table, decl.source))
        elif decl.source in DERIVED_CONTEXT:
            sources.append(context.domain(decl.source))
        else:
            sources.append(frames.column("interactions", decl.source))
    return {name: Dictionary.from_columns(name, columns) for name, columns in feeds.items()}


def _interaction_events(
    data: CanonicalData, spec: DatasetSpec, users: Dictionary, tables: dict[str, Dictionary]
) -> EventTable:
    interactions = data.interactions
    events = EventTable(
        user=users.codes(interactions["user_id"]),
        timestamp=interactions["timestamp"].to_numpy().astype(np.int64, copy=False),
        line=interactions["line"].to_numpy().astype(np.int64, copy=False),
    )
    events.columns["item"] = tables[spec.item_key.name].codes(interactions["item_id"])
    events.columns["rating"] = interactions["rating"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    events.columns["label"] = interactions["label"].cast(pl.Int8).fill_null(-1).to_numpy()
    for decl in spec.group("context"):
        if decl.source not in DERIVED_CONTEXT:
            events.columns[decl.name] = tables[decl.name].codes(interactions[decl.source])
    return events


def _item_features(
    data: CanonicalData, spec: DatasetSpec, tables: dict[str, Dictionary]
) -> dict[str, np.ndarray]:
    """Per feature, an array item code -> the feature's code (null code for unknown items)."""
    item_table = tables[spec.item_key.name]
    item_codes = item_table.codes(data.items["item_id"])
    decls = spec.group("ad")
    if spec.protocol != "day_split":  # histories are item events: look them up per item too
        decls += spec.group("behaviour")
    features = {}
    for decl in decls:
        dictionary = tables[spec.table_of(decl.name)]
        codes = np.full(item_table.n_codes, dictionary.null_code, dtype=np.int32)
        codes[item_codes] = dictionary.codes(data.items[decl.source])
        features[decl.name] = codes
    return features


def _user_features(
    data: CanonicalData, spec: DatasetSpec, users: Dictionary, tables: dict[str, Dictionary]
) -> dict[str, np.ndarray]:
    """Per profile feature, an array user code -> code (null code for users without a row)."""
    profile = spec.group("user_profile")
    if not profile:
        return {}
    known = data.users.filter(pl.col("user_id").is_in(users.values.implode()))
    user_codes = users.codes(known["user_id"])
    features = {}
    for decl in profile:
        dictionary = tables[decl.name]
        codes = np.full(users.n_codes, dictionary.null_code, dtype=np.int32)
        codes[user_codes] = dictionary.codes(known[decl.source])
        features[decl.name] = codes
    return features


def _behavior_log(
    behaviors: pl.DataFrame, spec: DatasetSpec, users: Dictionary, tables: dict[str, Dictionary]
) -> EventTable:
    """The display-ad behaviour log of the users that have impressions, int-coded."""
    rows = behaviors.filter(pl.col("user_id").is_in(users.values.implode()))
    line = rows["line"] if "line" in rows.columns else pl.int_range(len(rows), eager=True)
    return EventTable(
        user=users.codes(rows["user_id"]),
        timestamp=rows["timestamp"].to_numpy().astype(np.int64, copy=False),
        line=line.to_numpy().astype(np.int64, copy=False),
        columns={
            f.name: tables[spec.table_of(f.name)].codes(rows[f.source])
            for f in spec.group("behaviour")
        },
    )


def code_canonical(data: CanonicalData, spec: DatasetSpec) -> CodedData:
    """Int-code the canonical tables according to ``spec``.

    Raises :class:`DataError` when a column the spec needs is missing, so a
    layout/spec mismatch is reported by column name instead of as a KeyError.
    """
    omitted = omitted_optional_features(data, spec)
    if omitted:
        log.info("layout %s has no %s: left out of the features", data.layout, ", ".join(omitted))
        spec = spec.without(set(omitted))
    behaviors = data.behaviors
    if spec.protocol == "day_split" and behaviors is None:
        log.warning("no behaviour log: every %s history is empty", data.layout)
        behaviors = pl.DataFrame(schema={**BEHAVIOR_COLUMNS, "line": pl.Int64()})
    tables = _dictionaries(spec, _Frames(data, behaviors, spec.family))
    users = Dictionary.from_columns("user_id", [data.interactions["user_id"]])
    return CodedData(
        spec=spec,
        users=users,
        tables=tables,
        interactions=_interaction_events(data, spec, users, tables),
        item_features=_item_features(data, spec, tables),
        user_features=_user_features(data, spec, users, tables),
        behaviors=(
            _behavior_log(behaviors, spec, users, tables) if spec.protocol == "day_split" else None
        ),
        omitted_features=omitted,
    )
