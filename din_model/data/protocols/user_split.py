"""The DIN paper's MovieLens protocol: every later rating is a sample, users split at random.

Per user, ratings sorted by (timestamp, line); every rating after the user's
first is a sample whose history is the user's earlier ratings of any value
(the last ``max_len``), labelled 1 when the rating is >= ``positive_min_rating``.
Users, not samples, are split at random (seeded) into train/valid/test by
``split_fractions``, so no test user's ratings are seen in training.
"""

from __future__ import annotations

import logging

import numpy as np

from din_model.data.encoding.coded import CodedData
from din_model.data.protocols.base import (
    SPLIT_CODES,
    TEST,
    TRAIN,
    VALID,
    HistoryEvents,
    ProtocolResult,
    SampleIndex,
)
from din_model.data.protocols.history import sort_events, time_order, user_offsets, window_start
from din_model.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def build(coded: CodedData, *, seed: int, max_len: int) -> ProtocolResult:
    spec = coded.spec
    min_interactions = int(spec.params.get("min_interactions", 2))
    threshold = float(spec.params["positive_min_rating"])
    fractions = spec.params["split_fractions"]
    if set(fractions) != set(SPLIT_CODES) or abs(sum(fractions.values()) - 1.0) > 1e-9:
        raise ConfigError(f"{spec.path}: split_fractions must give train/valid/test summing to 1")

    events = coded.interactions
    rating = events.columns["rating"]
    if np.isnan(rating).any():
        row = int(np.flatnonzero(np.isnan(rating))[0])
        raise DataError(
            "<interactions>", "a rating on every interaction", column="rating", got=f"row {row}"
        )
    n_users = len(coded.users.values)
    order_all = time_order(events.timestamp, events.line)
    counts = np.bincount(events.user, minlength=n_users)
    kept_users = counts >= min_interactions
    dropped = int(np.count_nonzero((counts > 0) & ~kept_users))

    perm = sort_events(events.user, events.timestamp, events.line)
    perm = perm[kept_users[events.user[perm]]]
    user = events.user[perm]
    offsets = user_offsets(user, n_users)
    block_start = offsets[user]
    target = np.flatnonzero(np.arange(len(user), dtype=np.int64) - block_start >= 1)

    user_split = assign_users(np.flatnonzero(kept_users), n_users, fractions, seed)
    samples = SampleIndex(
        user=user[target],
        item=events.columns["item"][perm][target],
        label=(rating[perm][target] >= threshold).astype(np.int8),
        timestamp=events.timestamp[perm][target],
        order=order_all[perm][target],
        split=user_split[user[target]],
        source_row=perm[target],
        hist_start=window_start(block_start[target], target, max_len),
        hist_end=target,
    )
    item = events.columns["item"][perm]
    history = HistoryEvents(
        timestamp=events.timestamp[perm],
        order=order_all[perm],
        columns={f.name: coded.item_features[f.name][item] for f in spec.group("behaviour")},
    )
    users_per_split = {
        name: int(np.count_nonzero(user_split[kept_users] == code))
        for name, code in SPLIT_CODES.items()
    }
    log.info(
        "user_split: %d samples of %d users (train/valid/test users %s), %d dropped",
        len(target),
        int(np.count_nonzero(kept_users)),
        "/".join(str(v) for v in users_per_split.values()),
        dropped,
    )
    report = {
        "min_interactions": min_interactions,
        "dropped_users": dropped,
        "kept_users": int(np.count_nonzero(kept_users)),
        "users_per_split": users_per_split,
        "positive_min_rating": threshold,
    }
    return ProtocolResult(samples, history, report)


def assign_users(
    users: np.ndarray, n_users: int, fractions: dict[str, float], seed: int
) -> np.ndarray:
    """Split code per user code: a seeded permutation cut at the rounded fractions."""
    shuffled = np.random.default_rng(seed).permutation(users)
    n_train = round(fractions["train"] * len(users))
    n_valid = round(fractions["valid"] * len(users))
    split = np.full(n_users, TRAIN, dtype=np.int8)
    split[shuffled[n_train : n_train + n_valid]] = VALID
    split[shuffled[n_train + n_valid :]] = TEST
    return split
