"""The official DIN protocol (Amazon, Taobao UserBehavior): next item with sampled negatives.

Per user, events sorted by (timestamp, line). At every position k >= 1 the
event k is a positive (history = events before k, the last ``max_len``) and a
uniformly random item of the data set that the user never touched is its
negative, with the same history. The user's last position is test, the
second-to-last valid, the rest train; a user with fewer than
``min_interactions`` (3) events cannot fill the three splits and is dropped.
"""

from __future__ import annotations

import logging

import numpy as np

from din_model.data.encoding.coded import CodedData
from din_model.data.protocols.base import (
    TEST,
    TRAIN,
    VALID,
    HistoryEvents,
    ProtocolResult,
    SampleIndex,
)
from din_model.data.protocols.history import sort_events, time_order, user_offsets, window_start
from din_model.errors import DataError

log = logging.getLogger(__name__)

MAX_SAMPLING_ROUNDS = 10_000


def build(coded: CodedData, *, seed: int, max_len: int) -> ProtocolResult:
    spec = coded.spec
    min_interactions = int(spec.params.get("min_interactions", 3))
    events = coded.interactions
    n_users = len(coded.users.values)
    order_all = time_order(events.timestamp, events.line)

    counts = np.bincount(events.user, minlength=n_users)
    kept_users = counts >= min_interactions
    dropped = int(np.count_nonzero((counts > 0) & ~kept_users))
    perm = sort_events(events.user, events.timestamp, events.line)
    perm = perm[kept_users[events.user[perm]]]
    user = events.user[perm]
    item = events.columns["item"][perm]
    offsets = user_offsets(user, n_users)

    block_start = offsets[user]
    position = np.arange(len(user), dtype=np.int64) - block_start
    target = np.flatnonzero(position >= 1)
    k = position[target]
    n_of_user = counts[user[target]]
    split = np.full(len(target), TRAIN, dtype=np.int8)
    split[k == n_of_user - 2] = VALID
    split[k == n_of_user - 1] = TEST
    hist_end = target
    hist_start = window_start(block_start[target], hist_end, max_len)

    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(np.bincount(events.columns["item"], minlength=coded.n_items))
    negatives, rounds = sample_unseen_items(user, item, user[target], pool, coded.n_items, rng)

    # positive then negative for every position: rows 2i and 2i + 1
    def pair(values: np.ndarray, other: np.ndarray | None = None) -> np.ndarray:
        out = np.empty(2 * len(values), dtype=values.dtype)
        out[0::2] = values
        out[1::2] = values if other is None else other
        return out

    label = pair(np.ones(len(target), np.int8), np.zeros(len(target), np.int8))
    samples = SampleIndex(
        user=pair(user[target]),
        item=pair(item[target], negatives),
        label=label,
        timestamp=pair(events.timestamp[perm][target]),
        order=pair(order_all[perm][target]),
        split=pair(split),
        source_row=pair(perm[target]),
        hist_start=pair(hist_start),
        hist_end=pair(hist_end),
    )
    history = HistoryEvents(
        timestamp=events.timestamp[perm],
        order=order_all[perm],
        columns={f.name: coded.item_features[f.name][item] for f in spec.group("behaviour")},
    )
    report = {
        "min_interactions": min_interactions,
        "dropped_users": dropped,
        "kept_users": int(np.count_nonzero(kept_users)),
        "negative_pool_items": len(pool),
        "negative_sampling_rounds": rounds,
    }
    log.info(
        "sequential: %d positions of %d users (%d dropped with < %d events), "
        "negatives drawn in %d rounds",
        len(target),
        report["kept_users"],
        dropped,
        min_interactions,
        rounds,
    )
    return ProtocolResult(samples, history, report)


def sample_unseen_items(
    event_user: np.ndarray,
    event_item: np.ndarray,
    sample_user: np.ndarray,
    pool: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """One item per sample drawn uniformly from ``pool``, never one its user touched.

    Vectorised rejection sampling: every round draws for all pending samples at
    once and keeps the draws whose (user, item) key is not in the sorted set of
    touched keys; rejected samples are redrawn in the next round. The result is
    a deterministic function of the generator's state and the sample order.
    """
    touched = np.sort(event_user.astype(np.int64) * n_items + event_item)
    touched = touched[np.flatnonzero(np.diff(touched, prepend=-1))]  # 10x faster than np.unique
    distinct_per_user = np.bincount(touched // n_items)
    if len(sample_user) and distinct_per_user[sample_user].max() >= len(pool):
        raise DataError(
            "<interactions>",
            "every user to leave at least one item untouched, to sample a negative from",
            column="item_id",
            got=f"a user who touched all {len(pool)} items",
        )
    result = np.empty(len(sample_user), dtype=np.int32)
    pending = np.arange(len(sample_user))
    rounds = 0
    while pending.size:
        rounds += 1
        if rounds > MAX_SAMPLING_ROUNDS:
            raise RuntimeError("negative sampling did not converge")
        drawn = pool[rng.integers(0, len(pool), size=pending.size)]
        keys = sample_user[pending].astype(np.int64) * n_items + drawn
        at = np.minimum(np.searchsorted(touched, keys), len(touched) - 1)
        rejected = touched[at] == keys
        accepted = ~rejected
        result[pending[accepted]] = drawn[accepted]
        pending = pending[rejected]
    return result, rounds
