"""GAUC: impression-weighted per-user AUC, single-class users skipped and counted."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from din_model.metrics import gauc


def reference_gauc(labels, scores, users) -> tuple[float, int]:
    """The paper's definition, one user at a time with scikit-learn (test oracle only)."""
    total = weight = 0.0
    counted = 0
    for user in np.unique(users):
        mask = users == user
        if labels[mask].min() == labels[mask].max():
            continue
        total += mask.sum() * roc_auc_score(labels[mask], scores[mask])
        weight += mask.sum()
        counted += 1
    return total / weight, counted


@pytest.mark.parametrize("seed", range(4))
def test_gauc_matches_per_user_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    users = rng.integers(1, 120, n) * 7919  # sparse, unsorted keys
    labels = rng.integers(0, 2, n)
    scores = np.round(rng.random(n) + 0.3 * labels, 2)  # ties within users
    value, counted = gauc(labels, scores, users)
    expected, expected_count = reference_gauc(labels, scores, users)
    assert counted == expected_count
    assert value == pytest.approx(expected, abs=1e-9)


def test_gauc_skips_single_class_users_and_reports_count() -> None:
    users = np.array([1, 1, 1, 2, 2, 3, 3, 3, 3])
    labels = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1])  # users 1 and 2: one class only
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.3, 0.1, 0.9, 0.8, 0.2])
    value, counted = gauc(labels, scores, users)
    assert counted == 1
    assert value == pytest.approx(roc_auc_score(labels[5:], scores[5:]))


def test_gauc_weights_users_by_impressions() -> None:
    # user 1: 2 impressions, AUC 1; user 2: 4 impressions, AUC 0 -> (2*1 + 4*0) / 6
    users = np.array([1, 1, 2, 2, 2, 2])
    labels = np.array([0, 1, 0, 0, 1, 1])
    scores = np.array([0.1, 0.9, 0.9, 0.8, 0.2, 0.1])
    value, counted = gauc(labels, scores, users)
    assert counted == 2
    assert value == pytest.approx(2 / 6)


def test_gauc_without_any_mixed_user_is_nan_with_zero_users() -> None:
    value, counted = gauc([1, 0], [0.2, 0.4], [1, 2])
    assert math.isnan(value) and counted == 0
