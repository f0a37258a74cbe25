"""An impression's history and profile from the dataset's own files, as serving would build them.

``din score --interactions DIR`` scores impressions that carry no history: each one's
history is built here from the owner's raw files (read with the dataset's adapter into
the canonical tables), with the rule the protocols apply to a sample:

* the events of the impression's user (the interactions, or the behaviour log of a
  dataset that has one, the Taobao display-ad ``behavior_log``), oldest first in
  (timestamp, line) order, the last ``max_len`` of them (the model's history cut);
* only events with a timestamp **strictly earlier** than the impression's. An event at
  the very same second is left out: a new impression has no line number to order it
  against, and an event logged at the same instant may be the impression itself. The
  display-ad protocol uses the same rule; the sequential and MovieLens protocols order
  same-second events by their file line instead, so for a training row whose user has
  other events at exactly its timestamp (common in Amazon, whose review times are whole
  days) the history built here is shorter than the one the model saw for that row: it
  lacks those same-second events;
* a user with no events (or unknown to the files) has an empty history.

Profile values (``age``, ``gender``, ...) that a request leaves out are looked up in the
canonical users table by ``user_id``; a user without a profile row gets missing values,
which encode to OOV as in training.

Everything is vectorised with the protocols' helpers (:mod:`din_model.data.protocols.history`):
one sort of the log, one merged sort to find every impression's slice, one gather; no
Python loop over rows.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

from din_model.data.canonical.schema import CanonicalData
from din_model.data.protocols.history import gather_index, sort_events, user_offsets, window_start
from din_model.errors import DataError

logger = logging.getLogger(__name__)

USER_ID = "user_id"
TIMESTAMP = "timestamp"
LINE = "line"


def _codes(values: pl.Series, table: pl.DataFrame) -> np.ndarray:
    """Dense code of every value in ``table`` (``user_id`` -> ``code``); unknown -> len(table)."""
    found = (
        values.rename(USER_ID)
        .to_frame()
        .join(table, on=USER_ID, how="left", maintain_order="left")["code"]
    )
    return found.fill_null(table.height).to_numpy().astype(np.int64)


def _first_not_earlier(
    log_user: np.ndarray, log_time: np.ndarray, user: np.ndarray, time: np.ndarray
) -> np.ndarray:
    """Per impression, the index in the sorted log of its user's first event at or after ``time``.

    One stable sort of log events and impressions together by (user, time), impressions
    before events at equal keys, so that an event at the same second counts as not
    earlier; the number of log events ahead of an impression is then its slice's end.
    """
    n = len(log_user)
    is_event = np.concatenate([np.ones(n, dtype=np.int64), np.zeros(len(user), dtype=np.int64)])
    order = np.lexsort(
        (is_event, np.concatenate([log_time, time]), np.concatenate([log_user, user]))
    )
    events_ahead = np.cumsum(is_event[order]) - is_event[order]
    end = np.empty(len(user), dtype=np.int64)
    impressions = order >= n
    end[order[impressions] - n] = events_ahead[impressions]
    return end


@dataclass(frozen=True)
class EventLog:
    """Past events of every user, sorted by (user, timestamp, line), one array per column."""

    users: pl.DataFrame  # user_id -> code, the row position
    offsets: np.ndarray  # user ``u``'s block: offsets[u]:offsets[u + 1]; one empty extra block
    user: np.ndarray  # code of each sorted event
    timestamp: np.ndarray  # unix seconds of each sorted event
    columns: dict[str, pl.Series]  # raw values of each sorted event, per canonical column

    @classmethod
    def from_events(cls, events: pl.DataFrame, columns: Sequence[str], source: str) -> EventLog:
        """From a canonical event table (``user_id``, ``timestamp``, ``line`` if any, columns)."""
        missing = [c for c in (USER_ID, TIMESTAMP, *columns) if c not in events.columns]
        if missing:
            raise DataError(
                source, f"the events' column(s) {', '.join(missing)}", column=missing[0]
            )
        users = events[USER_ID].unique().sort().to_frame()
        users = users.with_columns(pl.int_range(users.height, dtype=pl.Int64).alias("code"))
        code = _codes(events[USER_ID], users)
        timestamp = events[TIMESTAMP].cast(pl.Int64).to_numpy()
        line = (
            events[LINE].to_numpy()
            if LINE in events.columns
            else np.arange(events.height, dtype=np.int64)  # canonical tables keep file order
        )
        perm = sort_events(code, timestamp, line)
        offsets = user_offsets(code[perm], users.height + 1)  # + the block of unknown users
        gather = pl.Series(perm, dtype=pl.Int64)
        return cls(
            users=users,
            offsets=offsets,
            user=code[perm],
            timestamp=timestamp[perm],
            columns={c: events[c].cast(pl.String).gather(gather) for c in columns},
        )

    @classmethod
    def from_canonical(cls, data: CanonicalData, columns: Sequence[str]) -> EventLog:
        """The behaviour log of ``data``: its ``behaviors`` table, else its interactions."""
        if data.behaviors is not None:
            return cls.from_events(data.behaviors, columns, f"<{data.dataset} behaviour log>")
        return cls.from_events(data.interactions, columns, f"<{data.dataset} interactions>")

    def user_codes(self, user_ids: pl.Series) -> np.ndarray:
        """Codes of raw user ids (text); a user without events gets the empty extra block."""
        return _codes(user_ids.cast(pl.String), self.users)

    def slices(
        self, user_ids: pl.Series, timestamps: np.ndarray, max_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``[start, end)`` in the sorted log of each impression's history (see the module doc)."""
        user = self.user_codes(user_ids)
        end = _first_not_earlier(self.user, self.timestamp, user, timestamps.astype(np.int64))
        return window_start(self.offsets[user], end, max_len), end

    def histories(
        self, user_ids: pl.Series, timestamps: np.ndarray, max_len: int
    ) -> dict[str, pl.Series]:
        """Column -> ``List(String)`` of raw values per impression, oldest first."""
        start, end = self.slices(user_ids, timestamps, max_len)
        offsets, index = gather_index(start, end)
        gather = pl.Series(index, dtype=pl.Int64)
        out = {}
        for column, values in self.columns.items():
            taken = values.gather(gather).to_arrow()
            lists = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), taken)
            out[column] = pl.Series(column, pl.from_arrow(lists)).cast(pl.List(pl.String))
        return out


def profile_values(
    users: pl.DataFrame, user_ids: pl.Series, columns: Sequence[str]
) -> pl.DataFrame:
    """The profile ``columns`` of each impression's user (missing where the user has no row)."""
    missing = [c for c in columns if c not in users.columns]
    if missing:
        raise DataError(
            "<canonical users>", f"the profile column(s) {', '.join(missing)}", column=missing[0]
        )
    wanted = users.select(pl.col(USER_ID).cast(pl.String), *columns)
    return (
        user_ids.cast(pl.String)
        .rename(USER_ID)
        .to_frame()
        .join(wanted, on=USER_ID, how="left", maintain_order="left")
        .select(columns)
    )


def user_context(
    requests: pl.DataFrame,
    data: CanonicalData,
    histories: Mapping[str, str],
    profiles: Sequence[str],
    max_len: int,
) -> pl.DataFrame:
    """``requests`` (``user_id``, ``timestamp``, ...) with their histories and profiles added.

    ``histories``: request column -> the log column it lists (``history_item_id`` ->
    ``item_id``); ``profiles``: profile columns to look up in ``data.users``.
    """
    log = EventLog.from_canonical(data, list(dict.fromkeys(histories.values())))
    users, timestamps = requests[USER_ID], requests[TIMESTAMP].to_numpy()
    built = log.histories(users, timestamps, max_len)
    extra = [built[source].alias(column) for column, source in histories.items()]
    if profiles:
        extra.extend(profile_values(data.users, users, profiles).get_columns())
    unknown = int((log.user_codes(users) == log.users.height).sum())
    logger.info(
        "histories of %d rows from the %s files (%d rows of users without events there)",
        requests.height,
        data.dataset,
        unknown,
    )
    return requests.with_columns(extra)
