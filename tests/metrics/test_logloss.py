"""LogLoss equals scikit-learn's log_loss, including its clipping at 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss as sklearn_log_loss

from din_model.metrics import log_loss


@pytest.mark.parametrize("seed", range(5))
def test_logloss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    labels = rng.integers(0, 2, n)
    scores = rng.random(n)
    scores[:20] = rng.choice([0.0, 1.0, 1e-20, 1 - 1e-17], 20)  # exercise the clipping
    expected = sklearn_log_loss(labels, scores, labels=[0, 1])
    assert log_loss(labels, scores) == pytest.approx(expected, abs=1e-9)


def test_logloss_float32_scores_clip_like_sklearn() -> None:
    labels = np.array([1, 0, 1, 0])
    scores = np.array([1.0, 1.0, 0.0, 0.25], dtype=np.float32)
    expected = sklearn_log_loss(labels, scores, labels=[0, 1])
    assert log_loss(labels, scores) == pytest.approx(expected, abs=1e-9)


def test_logloss_rejects_values_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        log_loss([0, 1], [0.5, 1.5])
