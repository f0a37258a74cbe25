"""RelaImpr: the DIN paper's relative improvement over a base model (eq. 8).

RelaImpr = ((AUC(model) - 0.5) / (AUC(base) - 0.5) - 1) * 100%. Measuring from
0.5 (a random guess) makes gains comparable between data sets whose AUCs sit
at different levels.
"""

from __future__ import annotations

import math


def rela_impr(auc_model: float, auc_base: float) -> float:
    """Relative improvement of ``auc_model`` over ``auc_base``, in percent."""
    if math.isnan(auc_model) or math.isnan(auc_base):
        return float("nan")
    if auc_base == 0.5:
        raise ValueError("RelaImpr is undefined for a base AUC of exactly 0.5")
    return ((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0
