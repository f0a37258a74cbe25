"""RelaImpr (paper eq. 8) and the bundle every evaluation reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.metrics import roc_auc_score

from din_model.metrics import evaluate_scores, rela_impr


def test_relaimpr_formula() -> None:
    # DIN paper, Table 3 (Amazon): BaseModel 0.8624, DIN 0.8818 -> +5.35%
    assert rela_impr(0.8818, 0.8624) == pytest.approx(5.353, abs=1e-3)
    assert rela_impr(0.7, 0.7) == 0.0
    assert math.isnan(rela_impr(float("nan"), 0.7))
    with pytest.raises(ValueError):
        rela_impr(0.7, 0.5)


def test_evaluate_scores_reports_every_metric() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.clip(rng.random(500) * 0.8 + 0.2 * labels, 0, 1)
    users = rng.integers(1, 40, 500)
    result = evaluate_scores(labels, scores, users)
    assert set(result) == {"auc", "gauc", "gauc_users", "logloss", "n"}
    assert result["n"] == 500
    assert result["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    assert result["logloss"] == pytest.approx(sklearn_log_loss(labels, scores), abs=1e-9)
    assert 0 < result["gauc_users"] <= 39
