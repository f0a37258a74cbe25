"""The champion rule (din_model.pipeline.promotion): every branch of decide(), the head to
head's numbers against an independent computation, and the policy file and overrides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from din_model.errors import ConfigError
from din_model.metrics.paired_bootstrap import PairedDifference
from din_model.pipeline.promotion import (
    HeadToHead,
    ModelIdentity,
    NoComparableUsers,
    PromotionPolicy,
    decide,
    head_to_head,
    load_policy,
    needs_head_to_head,
)

MAGAZINE = "amazon/amazon-2018/Magazine_Subscriptions"
MUSICAL = "amazon/amazon-2014/Musical_Instruments"
SYNTHETIC = "amazon/amazon-2018/synthetic"
POLICY = PromotionPolicy()


def real(version: str, family: str = MAGAZINE) -> ModelIdentity:
    return ModelIdentity(version, family, synthetic=False)


def synthetic(version: str) -> ModelIdentity:
    return ModelIdentity(version, SYNTHETIC, synthetic=True)


def h2h(low: float, high: float, logloss_diff: float) -> HeadToHead:
    diff = PairedDifference((low + high) / 2, low, high, n_users=300, resamples=1000, seed=0)
    # 0.5 and the differences used below are binary fractions: 0.5 + d - 0.5 == d exactly
    return HeadToHead("2014-03", 600, 300, 0.70, 0.68, 0.5 + logloss_diff, 0.5, diff)


def test_first_champion_needs_no_head_to_head() -> None:
    decision = decide(real("1"), None, None, POLICY)
    assert (decision.promoted, decision.kind) == (True, "first")
    assert "first champion: v1" in decision.reason
    assert not needs_head_to_head(real("1"), None)


def test_real_challenger_replaces_a_synthetic_champion() -> None:
    assert not needs_head_to_head(real("2"), synthetic("1"))
    decision = decide(real("2"), synthetic("1"), None, POLICY)
    assert (decision.promoted, decision.kind) == (True, "real_over_synthetic")
    assert "real data takes over" in decision.reason and SYNTHETIC in decision.reason


def test_never_synthetic_over_real_even_with_a_winning_head_to_head() -> None:
    decision = decide(synthetic("2"), real("1"), h2h(0.05, 0.09, -0.1), POLICY)
    assert (decision.promoted, decision.kind) == (False, "synthetic_over_real")
    assert "never synthetic over real" in decision.reason


def test_other_family_is_kept_and_names_the_command_to_switch() -> None:
    assert not needs_head_to_head(real("2", MUSICAL), real("1"))
    decision = decide(real("2", MUSICAL), real("1"), h2h(0.05, 0.09, -0.1), POLICY)
    assert (decision.promoted, decision.kind) == (False, "other_family")
    assert "`din champion --dataset amazon --set 2`" in decision.reason
    assert MUSICAL in decision.reason and MAGAZINE in decision.reason


def test_champion_without_a_family_tag_is_another_family() -> None:
    decision = decide(real("2"), real("1", family=""), None, POLICY)
    assert (decision.promoted, decision.kind) == (False, "other_family")
    assert "no data_family tag" in decision.reason


def test_same_family_without_a_head_to_head_is_kept() -> None:
    assert needs_head_to_head(real("2"), real("1"))
    assert needs_head_to_head(synthetic("2"), synthetic("1"))
    decision = decide(real("2"), real("1"), None, POLICY)
    assert (decision.promoted, decision.kind) == (False, "no_head_to_head")


def test_the_version_holding_the_alias_is_not_judged_against_itself() -> None:
    assert not needs_head_to_head(real("1"), real("1"))
    assert decide(real("1"), real("1"), None, POLICY).kind == "already_champion"


def test_promotes_only_when_interval_above_min_gain_and_logloss_within_tolerance() -> None:
    inclusive = dataclasses.replace(POLICY, logloss_tolerance=2**-7)
    win = decide(real("2"), real("1"), h2h(0.001, 0.03, 2**-7), inclusive)  # tolerance inclusive
    assert (win.promoted, win.kind) == (True, "promote")
    # the reason names both GAUCs, the interval and both LogLosses
    for text in ("0.7000", "0.6800", "[+0.0010, +0.0300]", "95% interval", "0.5078", "0.5000"):
        assert text in win.reason, (text, win.reason)

    straddles = decide(real("2"), real("1"), h2h(-0.01, 0.03, 0.0), POLICY)
    assert (straddles.promoted, straddles.kind) == (False, "keep")
    assert "interval does not lie above +0.0000" in straddles.reason
    assert "[-0.0100, +0.0300]" in straddles.reason

    worse_logloss = decide(real("2"), real("1"), h2h(0.01, 0.03, 2**-7), POLICY)
    assert not worse_logloss.promoted and "LogLoss is worse by more than 0.0050" in (
        worse_logloss.reason
    )
    stricter = dataclasses.replace(POLICY, min_gain=0.02)
    assert not decide(real("2"), real("1"), h2h(0.01, 0.03, 0.0), stricter).promoted
    # the interval must lie strictly above min_gain
    assert not decide(real("2"), real("1"), h2h(0.0, 0.03, 0.0), POLICY).promoted


def _independent(users, labels, scores) -> tuple[float, float]:
    """GAUC from sklearn's roc_auc_score per user (impression weights), and sklearn's LogLoss."""
    total = weighted = 0.0
    for user in np.unique(users):
        rows = users == user
        if labels[rows].min() == labels[rows].max():
            continue  # one class: no AUC, left out as in the paper
        weighted += rows.sum() * roc_auc_score(labels[rows], scores[rows])
        total += rows.sum()
    return weighted / total, sk_log_loss(labels, scores, labels=[0, 1])


def test_head_to_head_numbers_equal_an_independent_computation() -> None:
    rng = np.random.default_rng(3)
    users = rng.integers(0, 60, size=900).astype(str)  # raw string ids, as in a raw slice
    labels = rng.integers(0, 2, size=900)
    champion = rng.random(900)
    # the challenger is the champion plus signal: its GAUC is higher on these rows
    challenger = np.clip(champion * 0.5 + labels * 0.3 + rng.random(900) * 0.2, 0.01, 0.99)
    result = head_to_head(users, labels, challenger, champion, POLICY, "slice-x")

    gauc_a, loss_a = _independent(users, labels, challenger)
    gauc_b, loss_b = _independent(users, labels, champion)
    # Float argument: each per-user AUC is an exact ratio of integers (rank sums over
    # n_pos * n_neg) in both implementations, so the GAUCs differ only by the rounding of
    # a weighted sum of <= 60 terms in [0, 1] (< 60 * 2**-52 relative); the LogLosses
    # are means of the same 900 clipped logs, summed in different orders (< 900 * 2**-52
    # relative to a value below 10). 1e-12 is far above both.
    assert result.challenger_gauc == pytest.approx(gauc_a, abs=1e-12)
    assert result.champion_gauc == pytest.approx(gauc_b, abs=1e-12)
    assert result.challenger_logloss == pytest.approx(loss_a, abs=1e-12)
    assert result.champion_logloss == pytest.approx(loss_b, abs=1e-12)
    assert result.diff.diff == pytest.approx(gauc_a - gauc_b, abs=1e-12)
    assert result.diff.low <= result.diff.diff <= result.diff.high
    assert (result.rows, result.slice_label) == (900, "slice-x")
    counted = sum(len(set(labels[users == u])) == 2 for u in np.unique(users))
    assert result.users == result.diff.n_users == counted
    assert (result.diff.resamples, result.diff.seed) == (POLICY.resamples, POLICY.seed)

    tags, metrics = result.as_tags(), result.as_metrics()
    assert float(tags["gauc_diff_low"]) == pytest.approx(result.diff.low, rel=1e-9)  # .10g
    assert set(metrics) <= set(tags) and tags["h2h_slice"] == "slice-x"


def test_head_to_head_without_users_of_both_classes_says_so() -> None:
    users, labels = np.array(["a", "a", "b"]), np.array([1, 1, 0])
    with pytest.raises(NoComparableUsers, match="slice s1: none of its 3 rows"):
        head_to_head(users, labels, np.array([0.2, 0.3, 0.4]), np.array([0.1, 0.2, 0.3]),
                     POLICY, "s1")  # fmt: skip


def test_policy_file_then_overrides(tmp_path) -> None:
    assert load_policy() == PromotionPolicy()  # the packaged file holds the documented defaults
    assert load_policy({"min_gain": 0.01, "seed": None}) == PromotionPolicy(min_gain=0.01)
    custom = tmp_path / "promotion.yaml"
    custom.write_text("logloss_tolerance: 0.01\nresamples: 200\n")
    assert load_policy(path=custom) == PromotionPolicy(logloss_tolerance=0.01, resamples=200)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_gian": 0.1}, "unknown promotion setting 'min_gian'"),
        ({"confidence": 1.5}, "confidence must lie between 0 and 1"),
        ({"resamples": 0}, "resamples must be an integer >= 1"),
        ({"logloss_tolerance": -0.1}, "logloss_tolerance must be >= 0"),
        ({"min_gain": "big"}, "min_gain must be a finite number"),
        ({"seed": 1.5}, "seed must be an integer >= 0"),
    ],
)
def test_bad_policy_values_name_the_key(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(overrides)


def test_bad_key_in_the_policy_file_names_the_file(tmp_path) -> None:
    custom = tmp_path / "promotion.yaml"
    custom.write_text("min_gain: 0.0\nmax_gain: 1\n")
    with pytest.raises(ConfigError, match=f"{custom}: unknown promotion setting 'max_gain'"):
        load_policy(path=custom)
