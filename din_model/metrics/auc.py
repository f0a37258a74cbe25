"""Area under the ROC curve, computed from ranks (Mann-Whitney U).

Tied scores get the average of their ranks, which is exactly the trapezoidal
ROC area that scikit-learn computes; ranks are kept doubled so that every sum
is an exact integer and the only rounding is the final division.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from din_model.metrics._validate import as_binary_labels, as_scores


def doubled_tie_ranks(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tie groups of an ascending array: (start index of each group, doubled average rank).

    The average 1-based rank of a group spanning positions [start, end) is
    (start + 1 + end) / 2; doubled, it is the integer start + 1 + end.
    """
    n = sorted_scores.shape[0]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], n]
    return starts, starts + 1 + ends


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC of ``scores`` for binary ``labels``; NaN when only one class is present."""
    y = as_binary_labels(labels)
    s = as_scores(scores, y.shape[0])
    n_pos = int(y.sum())
    n_neg = y.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="stable")
    starts, rank2 = doubled_tie_ranks(s[order])
    positives_per_group = np.add.reduceat(y[order], starts)
    rank2_sum = int(np.dot(positives_per_group, rank2))
    u2 = rank2_sum - n_pos * (n_pos + 1)  # 2 * Mann-Whitney U, an exact integer
    return u2 / (2.0 * n_pos * n_neg)
