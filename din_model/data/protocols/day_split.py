"""Taobao display-ad protocol: impressions with their click labels, split by day.

Samples are the impressions of the canonical interactions, labelled by their
click. A sample's history is the user's behaviour-log events (category, brand)
strictly before the impression time, the last ``max_len``. Calendar days are
counted in the data's local time, UTC+``utc_offset_hours`` (Beijing, +8): the
last day is test, the day before valid, earlier days train.

Histories and targets come from different logs, so their common time scale
is the timestamp itself; "strictly before" means a behaviour logged in the same
second as the impression is not part of its history.
"""

from __future__ import annotations

import logging

import numpy as np

from din_model.data.canonical.context import SECONDS_PER_DAY, SECONDS_PER_HOUR
from din_model.data.encoding.coded import CodedData
from din_model.data.protocols.base import (
    TEST,
    TRAIN,
    VALID,
    HistoryEvents,
    ProtocolResult,
    SampleIndex,
)
from din_model.data.protocols.history import sort_events, user_offsets, window_start
from din_model.errors import DataError

log = logging.getLogger(__name__)


def build(coded: CodedData, *, seed: int, max_len: int) -> ProtocolResult:
    del seed  # nothing random: the split is by day and there is no sampling
    offset = int(coded.spec.params.get("utc_offset_hours", 8)) * SECONDS_PER_HOUR
    impressions = coded.interactions
    behaviors = coded.behaviors
    assert behaviors is not None  # code_canonical checks this for day-split specs
    label = impressions.columns["label"]
    if (label < 0).any():
        row = int(np.flatnonzero(label < 0)[0])
        raise DataError(
            "<interactions>", "a click label on every impression", column="label", got=f"row {row}"
        )
    n_users = len(coded.users.values)

    perm = sort_events(impressions.user, impressions.timestamp, impressions.line)
    user = impressions.user[perm]
    timestamp = impressions.timestamp[perm]
    day = (timestamp + offset) // SECONDS_PER_DAY
    last_day = int(day.max()) if len(day) else 0
    n_days = int(np.count_nonzero(np.bincount(day - day.min()))) if len(day) else 0
    if n_days < 3:
        raise DataError(
            "<interactions>",
            "impressions on at least 3 days (train days, a valid day and a test day)",
            column="timestamp",
            got=f"{n_days} day(s)",
        )
    split = np.full(len(perm), TRAIN, dtype=np.int8)
    split[day == last_day - 1] = VALID
    split[day == last_day] = TEST

    log_perm = sort_events(behaviors.user, behaviors.timestamp, behaviors.line)
    log_user = behaviors.user[log_perm]
    log_time = behaviors.timestamp[log_perm]
    log_offsets = user_offsets(log_user, n_users)
    # end = first event of the user at or after the impression time (strictly before)
    block_start = log_offsets[user]
    hist_end = block_start + _count_before(log_time, log_offsets, user, timestamp)

    samples = SampleIndex(
        user=user,
        item=impressions.columns["item"][perm],
        label=label[perm].astype(np.int8),
        timestamp=timestamp,
        order=timestamp,
        split=split,
        source_row=perm,
        hist_start=window_start(block_start, hist_end, max_len),
        hist_end=hist_end,
    )
    history = HistoryEvents(
        timestamp=log_time,
        order=log_time,
        columns={name: codes[log_perm] for name, codes in behaviors.columns.items()},
    )
    report = {
        "days": n_days,
        "test_day_start_utc": int(last_day * SECONDS_PER_DAY - offset),
        "utc_offset_hours": offset // SECONDS_PER_HOUR,
        "behavior_events": len(log_perm),
    }
    log.info(
        "day_split: %d impressions over %d days, %d behaviour events",
        len(perm),
        n_days,
        len(log_perm),
    )
    return ProtocolResult(samples, history, report)


def _count_before(
    log_time: np.ndarray, log_offsets: np.ndarray, user: np.ndarray, timestamp: np.ndarray
) -> np.ndarray:
    """Per impression, how many of its user's log events are strictly earlier.

    One searchsorted over a combined (user, time) key: the log is sorted by
    (user, time), so ``searchsorted(side="left")`` finds the first event of the
    same user at or after the impression time.
    """
    if len(log_time) == 0:
        return np.zeros(len(user), dtype=np.int64)
    t_min = min(int(log_time.min()), int(timestamp.min()))
    t_span = max(int(log_time.max()), int(timestamp.max())) - t_min + 2
    log_user = np.repeat(np.arange(len(log_offsets) - 1), np.diff(log_offsets))
    log_key = log_user.astype(np.int64) * t_span + (log_time - t_min)
    key = user.astype(np.int64) * t_span + (timestamp - t_min)
    return np.searchsorted(log_key, key, side="left") - log_offsets[user]
