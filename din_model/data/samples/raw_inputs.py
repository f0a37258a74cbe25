"""The raw request schema of a prepared dataset: which owner-form column feeds each feature.

A served model receives what a serving system has — the user's id and profile values,
the history as raw item ids (oldest first), the candidate's raw item id and the event's
timestamp — not the integer ids of one run's vocabulary. This module writes down, from
the dataset's spec, how each model feature is obtained from such a request, so that the
encoder inside the registered model (:mod:`din_model.serving.raw_encoder`) applies the
very lookups training applied:

* profile, context and the candidate's id come from a request column named after the
  canonical column (``age``, ``pid``, ``item_id``);
* a behaviour feature comes from ``history_<canonical column>`` (``history_item_id``);
* weekday and hour are derived from ``timestamp`` with the training code
  (:mod:`din_model.data.canonical.context`);
* item attributes (``category``, its history twin ``history_category``) may be left out
  of a request: they are looked up by item id in the item table the model carries,
  exactly as training joined interactions to items.

``din prepare`` writes this schema (``serving/raw_inputs.json``), the item table
(``serving/items.parquet``) and a few raw test rows (``serving/example.parquet``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import BEHAVIOR_COLUMNS, CanonicalData
from din_model.data.specs.spec import DERIVED_CONTEXT, ITEM_KEY_SOURCE, DatasetSpec
from din_model.errors import DataError

SERVING_DIR = "serving"
RAW_INPUTS_FILE = "raw_inputs.json"
ITEMS_FILE = "items.parquet"
EXAMPLE_FILE = "example.parquet"
HISTORY_PREFIX = "history_"
TIMESTAMP = "timestamp"
USER_ID = "user_id"


@dataclass(frozen=True)
class RawInput:
    """How one model feature is read from a raw request."""

    feature: str  # the model feature (``hist_item_id``)
    group: str  # user_profile | behaviour | ad | context
    kind: str  # sparse | sequence
    table: str  # its embedding table, whose vocabulary encodes the raw value
    column: str  # the request column (``history_item_id``), or ``timestamp`` when derived
    source: str  # the canonical column the value comes from (``item_id``)
    dtype: str  # the canonical type of the raw value: String | Int64 | Float64 ...
    derived: str | None = None  # ``weekday``/``hour``: computed from ``timestamp``
    from_items: bool = False  # may be omitted: looked up in the item table by item id

    @property
    def required(self) -> bool:
        return not self.from_items


def _canonical_dtype(data: CanonicalData, table: str, column: str) -> str:
    # a display-ad layout without its behaviour log still has the log's (empty) columns
    behaviors = data.behaviors if data.behaviors is not None else pl.DataFrame(
        schema=BEHAVIOR_COLUMNS
    )
    frames = {"users": data.users, "items": data.items, "interactions": data.interactions,
              "behaviors": behaviors}  # fmt: skip
    frame = frames[table]
    if column not in frame.columns:
        raise DataError(f"<{data.dataset} canonical {table}>", f"column '{column}'", column=column)
    return str(frame.schema[column])


def raw_inputs(spec: DatasetSpec, data: CanonicalData) -> list[RawInput]:
    """The request schema of ``spec`` (optional features the layout lacks already removed)."""
    history_from_items = spec.protocol != "day_split"  # display-ad histories are their own log
    inputs = []
    for decl in spec.features:
        table = spec.table_of(decl.name)
        if decl.group == "user_profile":
            dtype = _canonical_dtype(data, "users", decl.source)
            inputs.append(
                RawInput(decl.name, decl.group, "sparse", table, decl.source, decl.source, dtype)
            )
        elif decl.group == "ad":
            dtype = _canonical_dtype(data, "items", decl.source)
            lookup = decl.source != ITEM_KEY_SOURCE
            inputs.append(
                RawInput(
                    decl.name, decl.group, "sparse", table, decl.source, decl.source, dtype,
                    None, lookup,
                )  # fmt: skip
            )
        elif decl.group == "behaviour":
            log = "items" if history_from_items else "behaviors"
            dtype = _canonical_dtype(data, log, decl.source)
            from_items = history_from_items and decl.source != ITEM_KEY_SOURCE
            column = HISTORY_PREFIX + decl.source
            inputs.append(
                RawInput(
                    decl.name, decl.group, "sequence", table, column, decl.source, dtype,
                    None, from_items,
                )  # fmt: skip
            )
        elif decl.source in DERIVED_CONTEXT:
            inputs.append(
                RawInput(
                    decl.name, decl.group, "sparse", table, TIMESTAMP, TIMESTAMP, "Int64",
                    decl.source,
                )  # fmt: skip
            )
        else:
            dtype = _canonical_dtype(data, "interactions", decl.source)
            inputs.append(
                RawInput(decl.name, decl.group, "sparse", table, decl.source, decl.source, dtype)
            )
    return inputs


def item_table(data: CanonicalData, inputs: list[RawInput]) -> pl.DataFrame:
    """``item_id`` and every item attribute a request may leave out, one row per item."""
    columns = sorted({i.source for i in inputs if i.from_items})
    return data.items.select(ITEM_KEY_SOURCE, *columns).sort(ITEM_KEY_SOURCE)


def write_raw_inputs(folder: Path, inputs: list[RawInput]) -> None:
    (folder / RAW_INPUTS_FILE).write_text(json.dumps([asdict(i) for i in inputs], indent=1))


def read_raw_inputs(folder: Path) -> list[RawInput]:
    path = Path(folder) / RAW_INPUTS_FILE
    try:
        return [RawInput(**entry) for entry in json.loads(path.read_text())]
    except FileNotFoundError:
        raise DataError(path, "the raw request schema written by `din prepare`") from None
