"""Paired bootstrap of a GAUC difference: is model A really better than model B on these users?

Two models scored on the same test rows differ in GAUC by some amount; how
much of that would change with another draw of test users? The test users
are the sampling unit of GAUC (it is a weighted mean of per-user AUCs), so
the interval resamples *users* with replacement, both models together
(paired): a resample keeps each user's rows and both models' scores, and the
noise that the two models share (an easy user, a hard user) cancels.

Vectorised: each model's per-user AUC and each user's weight (impressions) are
computed once; a resample is then only a multinomial count vector ``c`` over
the users, and its GAUC difference is ``sum(c * w * (auc_a - auc_b)) / sum(c * w)``.
Users with one class have no AUC and are left out, as in :func:`gauc`; the
resampling draws from the users that count.

Several training runs per model (seeds) are given as 2-D score arrays (runs x
rows): each user's AUC is averaged over the runs of that model before the
users are resampled, so the interval is the test-user uncertainty of the
seed-averaged GAUC, and the point estimate is the difference of the mean GAUCs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from din_model.metrics._validate import as_binary_labels
from din_model.metrics.gauc import UserAUC, gauc, per_user_auc

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
_CHUNK_CELLS = 4_000_000  # resamples x users per count matrix (32 MB of float64)


class RowsMismatch(ValueError):
    """Two models' predictions are not on the same test rows, so they cannot be paired."""


@dataclass(frozen=True)
class PairedDifference:
    """GAUC(A) - GAUC(B) with its percentile bootstrap interval over test users."""

    diff: float
    low: float
    high: float
    n_users: int
    resamples: int
    seed: int
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or entirely below 0."""
        return self.low > 0.0 or self.high < 0.0

    def lies_above(self, min_gain: float) -> bool:
        """The whole interval is above ``min_gain`` (strictly): A beats B by more than it."""
        return self.low > min_gain

    def formatted(self, digits: int = 4, marker: str = "*") -> str:
        """``+0.0123 [+0.0040, +0.0210] *``; the marker only when the interval excludes 0."""
        text = f"{self.diff:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]"
        return f"{text} {marker}" if self.excludes_zero and marker else text


def require_same_rows(
    users_a: ArrayLike,
    labels_a: ArrayLike,
    users_b: ArrayLike,
    labels_b: ArrayLike,
    name_a: str = "A",
    name_b: str = "B",
) -> None:
    """Raise :class:`RowsMismatch`, naming the first differing row, unless the rows are equal."""
    ua, ub = np.asarray(users_a).ravel(), np.asarray(users_b).ravel()
    ya, yb = np.asarray(labels_a).ravel(), np.asarray(labels_b).ravel()
    if ua.shape[0] != ub.shape[0] or ya.shape[0] != yb.shape[0]:
        raise RowsMismatch(
            f"{name_a} has {ua.shape[0]} test rows and {name_b} has {ub.shape[0]}: "
            "a paired comparison needs both models scored on the same rows"
        )
    differ = np.flatnonzero((ua != ub) | (ya != yb))
    if differ.size:
        i = int(differ[0])
        raise RowsMismatch(
            f"{name_a} and {name_b} differ at test row {i} (user {ua[i]} label {ya[i]} vs "
            f"user {ub[i]} label {yb[i]}; {differ.size} rows differ): a paired comparison "
            "needs both models scored on the same rows in the same order"
        )


def _as_runs(scores: ArrayLike, n: int, name: str) -> np.ndarray:
    runs = np.asarray(scores, dtype=np.float64)
    if runs.ndim == 1:
        runs = runs[None, :]
    if runs.ndim != 2 or runs.shape[0] == 0:
        raise ValueError(f"{name}: expected scores of shape (rows,) or (runs, rows)")
    if runs.shape[1] != n:
        raise ValueError(f"{name}: got {n} labels but {runs.shape[1]} scores per run")
    return runs


def _mean_user_auc(u: np.ndarray, y: np.ndarray, runs: np.ndarray) -> UserAUC:
    per_run = [per_user_auc(u, y, run) for run in runs]
    # Labels and users are shared, so every run counts the same users in the same order.
    return UserAUC(per_run[0].users, per_run[0].weight, np.mean([r.auc for r in per_run], axis=0))


def difference_under_counts(
    counts: np.ndarray, weight: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    """GAUC(A) - GAUC(B) of resamples given as counts (resamples x users).

    A user drawn ``c`` times adds ``c`` copies of its rows: ``c * w`` to the
    weight and ``c * w * auc`` to the weighted sum of each model, so the
    difference is ``sum(c * w * (auc_a - auc_b)) / sum(c * w)``.
    """
    c = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    w = np.asarray(weight, dtype=np.float64)
    return (c @ (w * delta)) / (c @ w)


def _resampled_differences(
    weight: np.ndarray, delta: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """One GAUC difference per resample of the users with replacement (multinomial counts)."""
    rng = np.random.default_rng(seed)
    n = weight.shape[0]
    uniform = np.full(n, 1.0 / n)
    chunk = max(1, _CHUNK_CELLS // n)
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        counts = rng.multinomial(n, uniform, size=stop - start)
        out[start:stop] = difference_under_counts(counts, weight, delta)
    return out


def paired_gauc_difference(
    user_ids: ArrayLike,
    labels: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> PairedDifference:
    """GAUC(A) - GAUC(B) on the same rows, with a percentile bootstrap interval over users.

    ``scores_a``/``scores_b`` are 1-D (one scoring per row) or 2-D (runs x rows,
    e.g. one row per training seed). The point estimate is exactly
    ``gauc(A) - gauc(B)`` of the full data (for 2-D input, the difference of
    the mean GAUCs over runs); the interval comes from ``resamples`` draws of
    the counted users with replacement, seeded by ``seed``.
    """
    if resamples < 1:
        raise ValueError(f"resamples: expected a positive number, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a level between 0 and 1, got {confidence}")
    y = as_binary_labels(labels)
    u = np.asarray(user_ids).ravel()
    if u.shape[0] != y.shape[0]:
        raise ValueError(f"got {y.shape[0]} labels but {u.shape[0]} user keys")
    runs_a = _as_runs(scores_a, y.shape[0], "scores_a")
    runs_b = _as_runs(scores_b, y.shape[0], "scores_b")
    a, b = _mean_user_auc(u, y, runs_a), _mean_user_auc(u, y, runs_b)
    if a.users.shape[0] == 0:
        raise ValueError("no test user has both a positive and a negative row: GAUC is undefined")
    # The mean of one value is that value exactly: with 1-D scores this is gauc(A) - gauc(B).
    diff = float(np.mean([gauc(y, run, u)[0] for run in runs_a])) - float(
        np.mean([gauc(y, run, u)[0] for run in runs_b])
    )
    draws = _resampled_differences(a.weight, a.auc - b.auc, resamples, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return PairedDifference(
        diff=float(diff),
        low=float(low),
        high=float(high),
        n_users=int(a.users.shape[0]),
        resamples=resamples,
        seed=seed,
        confidence=confidence,
    )
