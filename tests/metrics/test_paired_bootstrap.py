"""The paired bootstrap of a GAUC difference: exact point estimate, interval over test users."""

from __future__ import annotations

import numpy as np
import pytest

from din_model.metrics import auc, gauc
from din_model.metrics.paired_bootstrap import (
    PairedDifference,
    RowsMismatch,
    difference_under_counts,
    paired_gauc_difference,
    per_user_auc,
    require_same_rows,
)


def make_rows(seed: int, n_users: int = 300) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Users with 4..12 impressions each, labels 40% positive, unsorted sparse user keys.

    numpy's PCG64 streams are the same on every platform, so the data is too.
    """
    rng = np.random.default_rng(seed)
    per_user = rng.integers(4, 13, n_users)
    users = np.repeat(rng.permutation(n_users) * 7919 + 3, per_user)
    order = rng.permutation(users.shape[0])
    users = users[order]
    labels = (rng.random(users.shape[0]) < 0.4).astype(np.int64)
    return users, labels, rng


def informative(labels: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Scores that rank positives higher, rounded to 2 decimals so that ties occur."""
    return np.round(labels + noise * rng.standard_normal(labels.shape[0]), 2)


def test_point_estimate_is_exactly_the_gauc_difference() -> None:
    users, labels, rng = make_rows(0)
    a, b = informative(labels, rng, 1.0), informative(labels, rng, 2.0)
    result = paired_gauc_difference(users, labels, a, b, resamples=200, seed=1)
    # Exact: the point estimate is din_model's GAUC of each model on the full data, subtracted.
    assert result.diff == gauc(labels, a, users)[0] - gauc(labels, b, users)[0]
    assert result.n_users == gauc(labels, a, users)[1]
    assert result.resamples == 200 and result.seed == 1


def test_per_user_auc_is_auc_on_each_users_rows_and_reproduces_gauc() -> None:
    users, labels, rng = make_rows(1, n_users=60)
    scores = informative(labels, rng, 1.0)
    per_user = per_user_auc(users, labels, scores)
    for user, weight, value in zip(per_user.users, per_user.weight, per_user.auc, strict=True):
        mask = users == user
        assert weight == mask.sum()
        # Exact: both divide the same integer rank statistic by the same integer product once.
        assert value == auc(labels[mask], scores[mask])
    skipped = {u for u in np.unique(users) if labels[users == u].min() == labels[users == u].max()}
    assert set(per_user.users) | skipped == set(np.unique(users))
    assert not set(per_user.users) & skipped
    # The per-user values are bitwise those of gauc; only the order in which the <= 60
    # weighted terms are summed may differ, a relative rounding below 60 * 2**-53 < 1e-14.
    weighted = np.dot(per_user.weight, per_user.auc) / per_user.weight.sum()
    assert weighted == pytest.approx(gauc(labels, scores, users)[0], rel=1e-13)


def test_a_count_vector_is_the_gauc_of_the_replicated_users() -> None:
    """What one resample computes equals GAUC on a data set where user i appears c_i times."""
    users, labels, rng = make_rows(2, n_users=40)
    a, b = informative(labels, rng, 1.0), informative(labels, rng, 1.5)
    ua, ub = per_user_auc(users, labels, a), per_user_auc(users, labels, b)
    counts = rng.multinomial(ua.users.shape[0], np.full(ua.users.shape[0], 1 / 40.0))
    rows_u, rows_y, rows_a, rows_b = [], [], [], []
    for key, count in zip(ua.users, counts, strict=True):
        mask = users == key
        for copy in range(count):  # each copy a distinct user, as a resample draws it
            rows_u.append(np.full(mask.sum(), f"{key}-{copy}"))
            rows_y.append(labels[mask])
            rows_a.append(a[mask])
            rows_b.append(b[mask])
    rep_u, rep_y = np.concatenate(rows_u), np.concatenate(rows_y)
    expected = gauc(rep_y, np.concatenate(rows_a), rep_u)[0]
    expected -= gauc(rep_y, np.concatenate(rows_b), rep_u)[0]
    got = difference_under_counts(counts, ua.weight, ua.auc - ub.auc)[0]
    # Same per-user AUCs and weights summed in another order (and one subtraction before
    # rather than after the division): rounding of a few ulps of values <= 1, far below 1e-12.
    assert got == pytest.approx(expected, abs=1e-12)


def test_identical_models_give_zero_and_a_zero_interval() -> None:
    users, labels, rng = make_rows(3)
    scores = informative(labels, rng, 1.0)
    result = paired_gauc_difference(users, labels, scores, scores.copy(), resamples=300)
    # Exact: every per-user difference is 0.0, so every resample's weighted mean is 0.0.
    assert (result.diff, result.low, result.high) == (0.0, 0.0, 0.0)
    assert not result.excludes_zero
    assert not result.lies_above(0.0)


def test_a_clearly_better_model_has_an_interval_above_zero() -> None:
    users, labels, rng = make_rows(4, n_users=400)
    good = labels + 0.5 * rng.standard_normal(labels.shape[0])
    noise = rng.standard_normal(labels.shape[0])
    result = paired_gauc_difference(users, labels, good, noise, resamples=1000, seed=7)
    # Expected difference: row AUC Phi(1 / (0.5 * sqrt 2)) = 0.92 against 0.5, about 0.42.
    # Per-user differences lie in [-1, 1] and weights in [4, 12] (max/mean <= 1.5), so even
    # in the worst case the standard error of the weighted mean over 400 users is
    # <= 1.5 / sqrt(400) = 0.075: the lower bound is more than 4 worst-case errors above 0.
    assert result.low > 0.0 and result.excludes_zero
    assert result.lies_above(0.1)
    assert result.low <= result.diff <= result.high
    reverse = paired_gauc_difference(users, labels, noise, good, resamples=1000, seed=7)
    assert reverse.high < 0.0 and reverse.excludes_zero and not reverse.lies_above(0.0)
    # Same draws, every per-user difference negated: the interval mirrors, up to the
    # rounding of the interpolated quantile (a few ulps).
    assert reverse.low == pytest.approx(-result.high, abs=1e-12)


def test_interval_contains_the_point_estimate() -> None:
    users, labels, rng = make_rows(5)
    a, b = informative(labels, rng, 1.0), informative(labels, rng, 1.1)
    result = paired_gauc_difference(users, labels, a, b, resamples=1000, seed=3)
    # The statistic is a smooth weighted mean over 300 users, whose bootstrap distribution
    # is centred on the estimate (the ratio's bias is O(1/n)); the estimate sits inside the
    # central 95% unless the interval were computed on another statistic.
    assert result.low < result.diff < result.high
    assert result.high - result.low < 0.2  # a width of order 4 standard errors, not [-1, 1]


def test_the_seed_fixes_the_interval() -> None:
    users, labels, rng = make_rows(6)
    a, b = informative(labels, rng, 1.0), informative(labels, rng, 1.2)
    first = paired_gauc_difference(users, labels, a, b, resamples=500, seed=11)
    again = paired_gauc_difference(users, labels, a, b, resamples=500, seed=11)
    other = paired_gauc_difference(users, labels, a, b, resamples=500, seed=12)
    assert first == again  # the same draws, the same arithmetic: bitwise equal
    assert (other.low, other.high) != (first.low, first.high)
    assert other.diff == first.diff  # the point estimate does not depend on the draws


def test_several_runs_average_each_users_auc() -> None:
    users, labels, rng = make_rows(7)
    runs_a = np.stack([informative(labels, rng, 1.0) for _ in range(3)])
    runs_b = np.stack([informative(labels, rng, 1.3) for _ in range(2)])
    result = paired_gauc_difference(users, labels, runs_a, runs_b, resamples=200, seed=0)
    mean_a = np.mean([gauc(labels, run, users)[0] for run in runs_a])
    mean_b = np.mean([gauc(labels, run, users)[0] for run in runs_b])
    assert result.diff == mean_a - mean_b  # the same numbers computed the same way
    one = paired_gauc_difference(users, labels, runs_a[:1], runs_b[0], resamples=200, seed=0)
    assert one == paired_gauc_difference(users, labels, runs_a[0], runs_b[0], resamples=200)


def test_rows_that_differ_cannot_be_paired() -> None:
    users = np.array([1, 1, 2, 2])
    labels = np.array([0, 1, 0, 1])
    require_same_rows(users, labels, users.copy(), labels.copy())
    swapped = labels.copy()
    swapped[2:] = [1, 0]
    with pytest.raises(RowsMismatch, match=r"din and base differ at test row 2 \(user 2 label 0"):
        require_same_rows(users, labels, users, swapped, "din", "base")
    with pytest.raises(RowsMismatch, match="din has 4 test rows and base has 3"):
        require_same_rows(users, labels, users[:3], labels[:3], "din", "base")
    with pytest.raises(ValueError, match="scores_b: got 4 labels but 3 scores per run"):
        paired_gauc_difference(users, labels, np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="no test user has both"):
        paired_gauc_difference(users, np.zeros(4, int), np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="resamples: expected a positive number, got 0"):
        paired_gauc_difference(users, labels, np.zeros(4), np.zeros(4), resamples=0)


def test_formatting_marks_an_interval_that_excludes_zero() -> None:
    above = PairedDifference(0.0123, 0.0040, 0.0210, 100, 1000, 0)
    across = PairedDifference(-0.002, -0.01, 0.004, 100, 1000, 0)
    assert above.formatted() == "+0.0123 [+0.0040, +0.0210] *"
    assert across.formatted() == "-0.0020 [-0.0100, +0.0040]"
    assert above.lies_above(0.004) is False and above.lies_above(0.0039) is True
