"""AUC equals scikit-learn's roc_auc_score, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from din_model.metrics import auc


@pytest.mark.parametrize("seed", range(6))
def test_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 5000))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    # Coarse scores make many ties; every other seed uses continuous scores.
    levels = int(rng.integers(2, 30)) if seed % 2 == 0 else 10**9
    scores = rng.integers(0, levels, n) / levels + 0.1 * labels * rng.random(n)
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)


def test_auc_all_scores_tied_is_one_half() -> None:
    assert auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5


def test_auc_perfect_and_reversed() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_auc_single_class_is_nan() -> None:
    assert math.isnan(auc([1, 1, 1], [0.1, 0.5, 0.9]))


def test_auc_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="scores"):
        auc([0, 1, 1], [0.1, 0.2])
