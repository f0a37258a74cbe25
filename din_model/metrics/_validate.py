"""Input checks shared by the metrics: flat arrays, binary labels, finite scores.

Kept apart so that every metric rejects bad input with the same message instead
of silently computing a number from NaNs or non-binary labels.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def as_binary_labels(labels: ArrayLike) -> np.ndarray:
    """Labels as a flat int64 array of 0/1; anything else is a ValueError."""
    y = np.asarray(labels).ravel()
    if y.dtype == bool:
        return y.astype(np.int64)
    if y.size and not np.isin(y, (0, 1)).all():
        bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
        raise ValueError(f"labels must be 0 or 1, got {bad.tolist()}")
    return y.astype(np.int64)


def as_scores(scores: ArrayLike, n: int) -> np.ndarray:
    """Scores as a flat float64 array of length ``n`` without NaN or infinity."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.shape[0] != n:
        raise ValueError(f"got {n} labels but {s.shape[0]} scores")
    if not np.isfinite(s).all():
        raise ValueError(f"scores contain {int((~np.isfinite(s)).sum())} NaN or infinite values")
    return s
