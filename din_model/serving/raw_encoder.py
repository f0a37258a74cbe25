"""Raw requests -> model ids, inside the served model, with exactly the lookups of training.

A request carries owner-form values (:mod:`din_model.data.samples.raw_inputs` lists the
columns of a dataset): raw user profile values, the candidate's raw item id, the
event's timestamp and the history as raw item ids, oldest first, of any length. The
encoder turns them into the padded id arrays the network takes:

* a raw value becomes the id its table's vocabulary gave it in training (``vocab/``),
  or OOV when training never saw it, or when it is missing; a hashed table hashes the
  value's text with the recorded function, seed and buckets;
* ids are compared as text, the form the adapters read them in, so the MovieLens item
  ``10`` and ``"10"`` are the same item (never a vocabulary index);
* item attributes a request leaves out (the candidate's and each past item's category)
  are looked up by item id in the item table the model carries; an item the table does
  not know has a missing category, so OOV, as in training;
* weekday and hour come from ``timestamp`` through :mod:`din_model.data.canonical.context`,
  the code training used;
* each history keeps its most recent ``max_len`` events (the training cut), right-padded.

A request that lacks a column, holds the wrong type, or a history that is not a list,
fails with :class:`InputError` naming the column and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa

from din_model.data.canonical import context
from din_model.data.encoding.hashing import hashed_ids
from din_model.data.encoding.vocabulary import VOCAB_DIR
from din_model.data.samples.raw_inputs import (
    ITEMS_FILE,
    TIMESTAMP,
    RawInput,
    read_raw_inputs,
)
from din_model.data.specs.feature_map import OOV_ID, PADDING_ID, FeatureMap, TableSpec
from din_model.data.specs.spec import ITEM_KEY_SOURCE
from din_model.errors import DataError
from din_model.serving.network_inputs import InputError


def _id_text(values: pl.Series, column: str) -> pl.Series:
    """Ids as text (how the adapters read them): integers in decimal, text unchanged."""
    dtype = values.dtype
    if dtype == pl.String or dtype == pl.Null:
        return values.cast(pl.String)
    if dtype.is_integer():
        return values.cast(pl.String)
    if dtype.is_float():
        finite = values.drop_nulls().drop_nans()
        if (finite != finite.floor()).any():
            raise InputError(f"column '{column}': expected ids (text or integers), got fractions")
        return values.fill_nan(None).cast(pl.Int64).cast(pl.String)
    raise InputError(f"column '{column}': expected ids (text or integers), got {dtype}")


#: From this many values on, a lookup is one vectorised hash join instead of dict lookups
#: (both exact matches of the same text, so the same ids; the dict wins on the few values
#: of a ranking call, the join on the millions of history ids of a batch).
VECTOR_LOOKUP_MIN = 4096


class TableCodec:
    """Raw value (as text) -> model id of one embedding table."""

    def __init__(self, spec: TableSpec, vocab: dict[str, int] | None) -> None:
        self.spec = spec
        self.vocab = vocab
        self._keys = pl.Series(list(vocab), dtype=pl.String) if vocab is not None else None
        self._ids = pl.Series(list(vocab.values()), dtype=pl.Int64) if vocab is not None else None

    @classmethod
    def load(cls, spec: TableSpec, vocab_dir: Path) -> TableCodec:
        if spec.hash_buckets is not None:
            return cls(spec, None)
        path = vocab_dir / f"{spec.name}.parquet"
        try:
            frame = pl.read_parquet(path, glob=False)
        except FileNotFoundError:
            raise DataError(path, f"the vocabulary of table '{spec.name}'") from None
        raw = frame["raw"].cast(pl.String).to_list()
        return cls(spec, dict(zip(raw, frame["id"].to_list(), strict=True)))

    def encode(self, text: pl.Series) -> np.ndarray:
        """Ids (int64) of ``text`` values; missing and unseen values are OOV."""
        if self.vocab is None:
            ids = hashed_ids(text.fill_null(""), int(self.spec.hash_buckets or 1),
                             int(self.spec.hash_seed or 0)).astype(np.int64)  # fmt: skip
            ids[text.is_null().to_numpy()] = OOV_ID
            return ids
        return _lookup(text, self.vocab, self._keys, self._ids)


def _lookup(
    text: pl.Series, table: dict[str, int], keys: pl.Series | None, ids: pl.Series | None
) -> np.ndarray:
    """``table[value]`` per value (int64), OOV where the value is missing or not a key."""
    if len(text) >= VECTOR_LOOKUP_MIN and keys is not None and ids is not None:
        found = text.cast(pl.String).replace_strict(
            keys, ids, default=OOV_ID, return_dtype=pl.Int64
        )
        return found.to_numpy()
    values = map(table.get, text.to_list(), repeat(OOV_ID))
    return np.fromiter(values, dtype=np.int64, count=len(text))


class ItemLookup:
    """Item id (text) -> the model id of one item attribute (the category), from the item table."""

    def __init__(self, ids: dict[str, int]) -> None:
        self.ids = ids
        self._keys = pl.Series(list(ids), dtype=pl.String)
        self._values = pl.Series(list(ids.values()), dtype=pl.Int64)

    def encode(self, item_text: pl.Series) -> np.ndarray:
        return _lookup(item_text, self.ids, self._keys, self._values)


def _lists(frame: pl.DataFrame, column: str) -> pl.Series:
    series = frame[column]
    if series.dtype == pl.Null:
        return pl.Series(column, [[]] * len(series), dtype=pl.List(pl.String))
    if not isinstance(series.dtype, pl.List | pl.Array):
        raise InputError(
            f"column '{column}': expected a list of item ids per row (oldest first), "
            f"got {series.dtype}"
        )
    return series.cast(pl.List(series.dtype.inner)).fill_null([])


def _flatten(lists: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Every list's values in one series (empty lists contribute nothing) and the lengths."""
    flat = pl.Series(lists.name, pl.from_arrow(lists.to_arrow().flatten()))
    return flat, lists.list.len()


def _pad_recent(ids: np.ndarray, lengths: np.ndarray, max_len: int) -> np.ndarray:
    """(rows, width) right-padded ids of the last ``max_len`` events of each row."""
    lengths = lengths.astype(np.int64)
    kept = np.minimum(lengths, max_len)
    width = max(1, int(kept.max()) if len(kept) else 1)
    out = np.full((len(lengths), width), PADDING_ID, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - kept  # the most recent events of each row
    rows = np.repeat(np.arange(len(lengths)), kept)
    cols = np.arange(int(kept.sum())) - np.repeat(np.cumsum(kept) - kept, kept)
    out[rows, cols] = ids[np.repeat(starts, kept) + cols]
    return out


class RawEncoder:
    """Encodes raw request frames for one trained model (see the module doc)."""

    def __init__(
        self,
        inputs: list[RawInput],
        feature_map: FeatureMap,
        codecs: dict[str, TableCodec],
        item_lookups: dict[str, ItemLookup],
        max_len: int,
    ) -> None:
        self.inputs = inputs
        self.feature_map = feature_map
        self.codecs = codecs
        self.item_lookups = item_lookups
        self.max_len = max_len

    @classmethod
    def load(
        cls,
        folder: str | Path,
        feature_map: FeatureMap,
        max_len: int,
        vocab_dir: str | Path | None = None,
    ) -> RawEncoder:
        """From a ``serving/`` folder (raw_inputs.json, items.parquet, and ``vocab/``).

        ``vocab_dir`` defaults to ``folder/vocab`` (a run's copy); a prepared folder
        keeps it beside ``serving/``.
        """
        folder = Path(folder)
        vocab = Path(vocab_dir) if vocab_dir is not None else folder / VOCAB_DIR
        inputs = read_raw_inputs(folder)
        codecs = {name: TableCodec.load(spec, vocab) for name, spec in feature_map.tables.items()}
        lookups: dict[str, ItemLookup] = {}
        wanted = {i.source for i in inputs if i.from_items}
        if wanted:
            items = pl.read_parquet(folder / ITEMS_FILE, glob=False)
            keys = items[ITEM_KEY_SOURCE].to_list()
            for raw in inputs:
                if raw.from_items and raw.source not in lookups:
                    ids = codecs[raw.table].encode(_id_text(items[raw.source], raw.source))
                    lookups[raw.source] = ItemLookup(dict(zip(keys, ids.tolist(), strict=True)))
        return cls(inputs, feature_map, codecs, lookups, max_len)

    # -- the request's columns ---------------------------------------------------------
    @property
    def required_columns(self) -> list[str]:
        return _columns(self.inputs, required=True)

    @property
    def optional_columns(self) -> list[str]:
        return _columns(self.inputs, required=False)

    def _frame(self, request: Any, inputs: list[RawInput]) -> pl.DataFrame:
        if isinstance(request, pl.DataFrame):
            frame = request
        elif isinstance(request, pd.DataFrame):
            frame = _pandas_to_polars(request)
        else:
            frame = _pandas_to_polars(pd.DataFrame(request))
        required = _columns(inputs, required=True)
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise InputError(
                f"missing column(s) {', '.join(missing)}; a request needs "
                f"{', '.join(required)} (optional: "
                f"{', '.join(_columns(inputs, required=False)) or 'none'})"
            )
        return frame

    # -- encoding ----------------------------------------------------------------------
    def encode(self, request: Any) -> dict[str, np.ndarray]:
        """Feature name -> int64 ids: sparse (rows,), sequences (rows, width <= max_len)."""
        return self._encode(request, self.inputs)

    def encode_ranking(self, user: Any, candidates: Any) -> dict[str, np.ndarray]:
        """One user request (one row, no candidate) against N candidates: N rows of ids.

        The user-side features (profile, context, the history) are encoded once and
        repeated; only the candidates' ad features are encoded per candidate.
        """
        ad = [i for i in self.inputs if i.group == "ad"]
        user_side = [i for i in self.inputs if i.group != "ad"]
        per_candidate = self._encode(candidates, ad)
        n = len(next(iter(per_candidate.values()))) if per_candidate else 0
        once = self._encode(user, user_side)
        if any(len(ids) != 1 for ids in once.values()):
            raise InputError("a ranking request holds exactly one user row")
        return {**{k: np.repeat(v, n, axis=0) for k, v in once.items()}, **per_candidate}

    def encode_plain_ranking(
        self, user: Mapping[str, Any], candidates: Sequence[Any]
    ) -> dict[str, np.ndarray] | None:
        """:meth:`encode_ranking` of one request given as plain Python values, or None.

        A serving call holds one user and a list of item ids: building polars frames for
        it costs more than the lookups themselves (about 1 ms of a few). This path reads
        the values directly and gives the same ids as :meth:`encode_ranking` (the same
        text form of ids, vocabularies, item table, context code and history cut; checked
        against it on real requests in ``tests/serving/test_raw_encoder.py``). It returns
        None, for the general path to take (and to word any error), whenever a value is
        not plain: ids other than text or integers, a timestamp that is not an integer,
        a missing column, candidates given with attributes, a hashed table.
        """
        user_side = [i for i in self.inputs if i.group != "ad"]
        if not isinstance(candidates, list | tuple) or any(
            column not in user for column in _columns(user_side, required=True)
        ):
            return None
        candidate_text = _plain_texts(candidates)
        if candidate_text is None or not candidate_text:
            return None
        out: dict[str, np.ndarray] = {}
        history_text: list[str | None] | None = None
        for raw in user_side:
            if raw.kind == "sequence":
                if raw.column in user:
                    texts = _plain_list(user[raw.column])
                    codec = self.codecs[raw.table].vocab
                else:  # an item attribute of each past item, looked up by its id
                    if history_text is None:
                        history_text = _plain_list(user.get("history_" + ITEM_KEY_SOURCE))
                    texts, codec = history_text, self.item_lookups[raw.source].ids
                if texts is None or codec is None:
                    return None
                recent = texts[max(0, len(texts) - self.max_len) :]
                row = np.full((1, max(1, len(recent))), PADDING_ID, dtype=np.int64)
                row[0, : len(recent)] = _ids(codec, recent)
                out[raw.feature] = row
                continue
            if raw.derived is not None:
                stamp = user.get(TIMESTAMP)
                if type(stamp) is not int:
                    return None
                value = context.derive(raw.derived, np.array([stamp], dtype=np.int64))[0]
                text: str | None = str(int(value))
            elif raw.column in user:
                text = _plain_text(user[raw.column])
                if text is _NOT_PLAIN:
                    return None
            else:
                return None
            vocab = self.codecs[raw.table].vocab
            if vocab is None:
                return None
            out[raw.feature] = _ids(vocab, [text])
        rows = len(candidate_text)
        once = {name: np.repeat(ids, rows, axis=0) for name, ids in out.items()}
        for raw in self.inputs:
            if raw.group != "ad":
                continue
            if raw.column == ITEM_KEY_SOURCE:
                table = self.codecs[raw.table].vocab
            elif raw.from_items:
                table = self.item_lookups[raw.source].ids
            else:
                return None
            if table is None:
                return None
            once[raw.feature] = _ids(table, candidate_text)
        return once

    def _encode(self, request: Any, inputs: list[RawInput]) -> dict[str, np.ndarray]:
        frame = self._frame(request, inputs)
        out: dict[str, np.ndarray] = {}
        timestamps = self._timestamps(frame) if any(i.derived for i in inputs) else None
        history_items: tuple[pl.Series, pl.Series] | None = None
        for raw in inputs:
            if raw.kind == "sequence":
                if raw.column in frame.columns:
                    flat, lengths = _flatten(_lists(frame, raw.column))
                    ids = self.codecs[raw.table].encode(_id_text(flat, raw.column))
                else:  # an item attribute of each past item, looked up by its id
                    if history_items is None:
                        history_items = self._history_items(frame)
                    flat, lengths = history_items
                    ids = self.item_lookups[raw.source].encode(flat)
                out[raw.feature] = _pad_recent(ids, lengths.to_numpy(), self.max_len)
            elif raw.derived is not None:
                assert timestamps is not None
                values = pl.Series(context.derive(raw.derived, timestamps)).cast(pl.String)
                out[raw.feature] = self.codecs[raw.table].encode(values)
            elif raw.column in frame.columns:
                text = _id_text(frame[raw.column], raw.column)
                out[raw.feature] = self.codecs[raw.table].encode(text)
            else:  # the candidate's attribute, looked up by its item id
                items = _id_text(frame[ITEM_KEY_SOURCE], ITEM_KEY_SOURCE)
                out[raw.feature] = self.item_lookups[raw.source].encode(items)
        return out

    def _history_items(self, frame: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
        column = "history_" + ITEM_KEY_SOURCE
        flat, lengths = _flatten(_lists(frame, column))
        return _id_text(flat, column), lengths

    def _timestamps(self, frame: pl.DataFrame) -> np.ndarray:
        values = frame[TIMESTAMP]
        if values.dtype.is_temporal():
            values = values.cast(pl.Datetime("us", "UTC")).dt.epoch("s")
        if not (values.dtype.is_integer() or values.dtype == pl.Null):
            raise InputError(
                f"column '{TIMESTAMP}': expected unix seconds (an integer), got {values.dtype}"
            )
        if values.null_count():
            raise InputError(f"column '{TIMESTAMP}': expected unix seconds, got a missing value")
        return values.cast(pl.Int64).to_numpy()


def _columns(inputs: list[RawInput], *, required: bool) -> list[str]:
    return list(dict.fromkeys(i.column for i in inputs if i.required == required))


def _pandas_to_polars(frame: pd.DataFrame) -> pl.DataFrame:
    """Column by column through Arrow, so a column that cannot convert is named."""
    columns = []
    for name in frame.columns:
        values = frame[name].to_numpy(dtype=object)
        try:
            array = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            array = _ids_as_text(values, str(name))  # text and integer ids mixed (JSON)
        columns.append(pl.Series(str(name), pl.from_arrow(array)))
    return pl.DataFrame(columns)


def _text(value: Any, column: str) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and np.isnan(value):
        return None
    raise InputError(
        f"column '{column}': expected ids (text or integers), unix-second timestamps or "
        f"lists of item ids, got {value!r}"
    )


def _ids_as_text(values: np.ndarray, column: str) -> pa.Array:
    """A column whose ids mix text and integers (as JSON allows), all as text."""
    lists = (list, tuple, np.ndarray)
    if any(isinstance(v, lists) for v in values):
        bad = next((v for v in values if v is not None and not isinstance(v, lists)), None)
        if bad is not None:
            raise InputError(
                f"column '{column}': expected a list of item ids per row (oldest first), "
                f"got {bad!r}"
            )
        return pa.array(
            [None if v is None else [_text(x, column) for x in v] for v in values],
            type=pa.list_(pa.string()),
        )
    return pa.array([_text(v, column) for v in values], type=pa.string())


_NOT_PLAIN = object()


def _plain_text(value: Any) -> Any:
    """The text form of a plain id (as :func:`_id_text` gives it), None, or ``_NOT_PLAIN``."""
    if value is None or type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return _NOT_PLAIN


def _ids(table: Mapping[str, int], texts: Sequence[str | None]) -> np.ndarray:
    """int64 ids of ``texts``; OOV for a missing or unknown one (as :func:`_lookup`)."""
    return np.fromiter(map(table.get, texts, repeat(OOV_ID)), dtype=np.int64, count=len(texts))


def _plain_texts(values: Sequence[Any]) -> list[str | None] | None:
    texts = [_plain_text(v) for v in values]
    return None if any(t is _NOT_PLAIN for t in texts) else texts


def _plain_list(value: Any) -> list[str | None] | None:
    """A history given as a list or tuple of plain ids (None: an absent history is empty)."""
    if value is None:
        return []
    return _plain_texts(value) if isinstance(value, list | tuple) else None
