"""The paper's evaluation metrics, one per module (TorchRec style).

:func:`evaluate_scores` bundles what every evaluation reports: AUC over all
samples, the user-weighted GAUC with its number of users, and LogLoss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from din_model.metrics.auc import auc
from din_model.metrics.gauc import gauc
from din_model.metrics.logloss import log_loss
from din_model.metrics.relaimpr import rela_impr

__all__ = ["auc", "evaluate_scores", "gauc", "log_loss", "rela_impr"]


def evaluate_scores(labels: ArrayLike, scores: ArrayLike, users: ArrayLike) -> dict[str, Any]:
    """AUC, GAUC (+ users counted), LogLoss and the sample count of one scored split."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    gauc_value, gauc_users = gauc(y, s, users)
    return {
        "auc": auc(y, s),
        "gauc": gauc_value,
        "gauc_users": gauc_users,
        "logloss": log_loss(y, s),
        "n": int(y.shape[0]),
    }
