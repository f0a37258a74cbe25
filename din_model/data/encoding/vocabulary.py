"""Raw values -> integer codes -> model ids, with vocabularies learned on train only.

Two steps, so that the protocols work on integers and strings stay at the edges:

1. A :class:`Dictionary` holds the sorted distinct raw values of one table
   (over every source that feeds it); a value's *code* is its position, and a
   missing (null) value gets the extra code ``len(values)``. Codes are
   deterministic because the order is the sorted raw order (lexicographic for
   string ids such as Amazon asins or MovieLens ids read as strings).
2. A :class:`Vocabulary` maps codes to model ids from the codes seen in the
   TRAIN split (targets, sampled negatives, histories): 0 is padding, 1 the
   OOV id for values unseen in training (and for missing values), known values
   get 2.. in sorted raw order. Valid/test values never enlarge the table, so
   model selection and evaluation see exactly what a deployed model would.

The user key is separate: 1..n_users over every user that has a sample, in
sorted raw order, with no OOV (GAUC groups by it; it is not a model input).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from din_model.data.specs.feature_map import FIRST_KNOWN_ID, OOV_ID

VOCAB_DIR = "vocab"
USER_KEY_TABLE = "user_id"


@dataclass(frozen=True)
class Dictionary:
    """The sorted distinct raw values of one table; a value's code is its position."""

    name: str
    values: pl.Series

    @property
    def null_code(self) -> int:
        """The code of a missing value: one past the last real value."""
        return len(self.values)

    @property
    def n_codes(self) -> int:
        """Codes in use including the null slot (the length of a lookup array)."""
        return len(self.values) + 1

    @classmethod
    def from_columns(cls, name: str, columns: list[pl.Series]) -> Dictionary:
        """Union of the non-null values of ``columns`` (cast to one dtype), sorted."""
        dtypes = {c.dtype for c in columns}
        target = dtypes.pop() if len(dtypes) == 1 else pl.String()
        if target == pl.Categorical() or isinstance(target, pl.Enum):
            target = pl.String()
        parts = [c.cast(target).drop_nulls().unique() for c in columns]
        values = pl.concat(parts).unique().sort().rename(name)
        return cls(name, values)

    def codes(self, column: pl.Series) -> np.ndarray:
        """Int32 codes of ``column``; nulls get :attr:`null_code`.

        Every non-null value must be in the dictionary (it is built from the same
        columns), so an unknown value is a programming error, not a data error.
        """
        if self.values.dtype == pl.String():
            enum = pl.Enum(self.values)
            physical = column.cast(pl.String()).cast(enum).to_physical()
            return physical.fill_null(self.null_code).cast(pl.Int32()).to_numpy()
        values = self.values.to_numpy()
        raw = column.cast(self.values.dtype)
        missing = raw.is_null().to_numpy()
        filled = raw.fill_null(values[0] if len(values) else 0).to_numpy()
        codes = np.searchsorted(values, filled).astype(np.int32)
        if len(values):
            found = values[np.minimum(codes, len(values) - 1)] == filled
            if not bool(found[~missing].all()):
                raise ValueError(f"values outside dictionary {self.name!r}")
        codes[missing] = self.null_code
        return codes


@dataclass(frozen=True)
class Vocabulary:
    """Codes -> model ids for one table, learned from the codes seen in training."""

    table: str
    dictionary: Dictionary
    lookup: np.ndarray  # code -> id (int32), length dictionary.n_codes
    known: np.ndarray  # bool per real code: seen in training

    #: whether ``vocab/<table>.parquet`` is written (hashed tables need no file)
    has_file = True

    @property
    def vocab_size(self) -> int:
        """Rows of the embedding table: padding, OOV and the known values."""
        return FIRST_KNOWN_ID + int(self.known.sum())

    def encode(self, codes: np.ndarray) -> np.ndarray:
        return self.lookup[codes]

    def frame(self) -> pl.DataFrame:
        """``raw`` value -> ``id`` for the known values, so raw ids can be scored later."""
        mask = pl.Series(self.known)
        return pl.DataFrame(
            {
                "raw": self.dictionary.values.filter(mask),
                "id": self.lookup[: len(self.known)][self.known].astype(np.int32),
            }
        )


def build_vocabulary(table: str, dictionary: Dictionary, seen: np.ndarray) -> Vocabulary:
    """Vocabulary from a boolean ``seen`` mask over codes (the null slot never counts)."""
    known = seen[: len(dictionary.values)].copy()
    ids = np.cumsum(known, dtype=np.int64) + (FIRST_KNOWN_ID - 1)
    lookup = np.full(dictionary.n_codes, OOV_ID, dtype=np.int32)
    lookup[: len(known)][known] = ids[known]
    return Vocabulary(table, dictionary, lookup, known)


def seen_mask(n_codes: int, *code_arrays: np.ndarray) -> np.ndarray:
    """Boolean mask of the codes that occur in any of ``code_arrays`` (O(n), no sort)."""
    mask = np.zeros(n_codes, dtype=bool)
    for codes in code_arrays:
        mask[codes] = True
    return mask


@dataclass(frozen=True)
class UserKey:
    """User codes -> the user key 1..n_users (sorted raw order, no OOV)."""

    dictionary: Dictionary
    lookup: np.ndarray  # code -> key, 0 for users without samples
    present: np.ndarray  # bool per code

    @property
    def n_users(self) -> int:
        return int(self.present.sum())

    def encode(self, codes: np.ndarray) -> np.ndarray:
        return self.lookup[codes]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "raw": self.dictionary.values.filter(pl.Series(self.present)),
                "id": self.lookup[self.present].astype(np.int32),
            }
        )


def build_user_key(dictionary: Dictionary, user_codes: np.ndarray) -> UserKey:
    present = seen_mask(len(dictionary.values), user_codes)
    lookup = np.zeros(len(dictionary.values), dtype=np.int32)
    lookup[present] = np.arange(1, int(present.sum()) + 1, dtype=np.int32)
    return UserKey(dictionary, lookup, present)


def write_vocabularies(out: Path, vocabularies: dict[str, Vocabulary], user_key: UserKey) -> None:
    """Write ``vocab/<table>.parquet`` (raw -> id) for every table and the user key."""
    folder = out / VOCAB_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for table, vocabulary in vocabularies.items():
        if not vocabulary.has_file:
            continue
        vocabulary.frame().write_parquet(folder / f"{table}.parquet")
    user_key.frame().write_parquet(folder / f"{USER_KEY_TABLE}.parquet")
