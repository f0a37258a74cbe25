"""Binary log loss (cross-entropy), clipped exactly as scikit-learn clips it.

scikit-learn turns p into the two columns [1 - p, p], clips both to
[eps, 1 - eps] with eps the machine epsilon of the scores' dtype, and averages
-log of the true class's column. Doing the same, in the scores' own float
precision, makes the value equal to ``sklearn.metrics.log_loss`` without
importing scikit-learn at training time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from din_model.metrics._validate import as_binary_labels, as_scores


def log_loss(labels: ArrayLike, scores: ArrayLike) -> float:
    """Mean negative log-likelihood of binary ``labels`` under probabilities ``scores``."""
    y = as_binary_labels(labels)
    raw = np.asarray(scores)
    dtype = raw.dtype if np.issubdtype(raw.dtype, np.floating) else np.float64
    eps = float(np.finfo(dtype).eps)
    p = as_scores(raw, y.shape[0]).astype(dtype, copy=False)
    if p.size == 0:
        return float("nan")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("scores must be probabilities in [0, 1]")
    # Computed in the scores' own precision, as scikit-learn does (float64 in training).
    p_pos = np.clip(p, eps, 1 - eps)
    p_neg = np.clip(1 - p, eps, 1 - eps)
    return float(-np.mean(np.where(y == 1, np.log(p_pos), np.log(p_neg))))
