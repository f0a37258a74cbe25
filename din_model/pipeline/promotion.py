"""The champion rule of scheduled retraining: judge a challenger against the champion.

Validation GAUCs of two training runs come from different validation sets (other
data, other months), so comparing them means nothing. The rule compares the two
models on the SAME rows instead: the newest held-back slice, scored by both
(:func:`head_to_head`), with a paired bootstrap over users of the GAUC difference
(:func:`din_model.metrics.paired_bootstrap.paired_gauc_difference`), so that the
users both models find easy or hard cancel out.

:func:`decide` promotes only when all of these hold (thresholds in
``din_model/configs/promotion.yaml``, :class:`PromotionPolicy`):

- the same data family (``amazon/amazon-2018/Magazine_Subscriptions`` is not
  ``movielens/ml-100k/ml-100k``, nor synthetic Amazon data);
- never a synthetic challenger over a real champion (a real challenger replaces a
  synthetic champion without a head to head: synthetic data is a placeholder);
- the bootstrap interval of GAUC(challenger) - GAUC(champion) lies strictly above
  ``min_gain``;
- LogLoss(challenger) - LogLoss(champion) <= ``logloss_tolerance``.

Plain Python and numpy: the MLflow side (loading registered models, tags, the
alias) is :mod:`tasks.champion`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from din_model.config.files import CONFIG_ROOT
from din_model.errors import ConfigError
from din_model.metrics.gauc import gauc
from din_model.metrics.logloss import log_loss
from din_model.metrics.paired_bootstrap import PairedDifference, paired_gauc_difference
from din_model.registry.files import load_mapping

POLICY_FILE = CONFIG_ROOT / "promotion.yaml"

#: Decision kinds that move the alias.
PROMOTING_KINDS = ("first", "promote", "real_over_synthetic")


@dataclass(frozen=True)
class PromotionPolicy:
    """Thresholds of the champion rule (see the module docstring)."""

    min_gain: float = 0.0
    logloss_tolerance: float = 0.005
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0


def _finite(key: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
    return float(value)


def _integer(key: str, value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{where}: {key} must be an integer >= {low}, got {value!r}")
    return value


def _checked(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Each value converted and range-checked; ConfigError names the key and what it expects."""
    known = {f.name for f in fields(PromotionPolicy)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown promotion setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key in ("min_gain", "logloss_tolerance", "confidence"):
            out[key] = _finite(key, value, where)
        else:
            out[key] = _integer(key, value, where, 1 if key == "resamples" else 0)
    tolerance = out.get("logloss_tolerance", 0.0)
    if tolerance < 0:
        raise ConfigError(f"{where}: logloss_tolerance must be >= 0, got {tolerance}")
    if "confidence" in out and not 0.0 < out["confidence"] < 1.0:
        raise ConfigError(f"{where}: confidence must lie between 0 and 1, got {out['confidence']}")
    return out


def load_policy(
    overrides: Mapping[str, Any] | None = None, path: str | Path = POLICY_FILE
) -> PromotionPolicy:
    """The policy of ``promotion.yaml``, then ``overrides`` (a None value keeps the file's)."""
    policy = replace(PromotionPolicy(), **_checked(load_mapping(path), str(path)))
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    return replace(policy, **_checked(given, "promotion parameter"))


@dataclass(frozen=True)
class ModelIdentity:
    """What data a registered model learnt from: its version, family and real/synthetic."""

    version: str | None
    family: str  # e.g. "amazon/amazon-2018/Magazine_Subscriptions"; "" when unknown
    synthetic: bool

    @property
    def dataset(self) -> str:
        return self.family.split("/", 1)[0] if self.family else "<dataset>"


@dataclass(frozen=True)
class SliceScore:
    """One model's GAUC and LogLoss on a slice (the first champion is scored alone)."""

    slice_label: str
    rows: int
    users: int  # users with both a click and a non-click: the users GAUC counts
    gauc: float
    logloss: float

    def as_tags(self, prefix: str = "challenger") -> dict[str, str]:
        return {
            "h2h_slice": self.slice_label,
            "h2h_rows": str(self.rows),
            "h2h_users": str(self.users),
            f"{prefix}_gauc": f"{self.gauc:.10g}",
            f"{prefix}_logloss": f"{self.logloss:.10g}",
        }

    def as_metrics(self, prefix: str = "challenger") -> dict[str, float]:
        return {
            "h2h_rows": float(self.rows),
            "h2h_users": float(self.users),
            f"{prefix}_gauc": self.gauc,
            f"{prefix}_logloss": self.logloss,
        }


@dataclass(frozen=True)
class HeadToHead:
    """Challenger and champion scored on the same slice rows."""

    slice_label: str
    rows: int
    users: int  # users GAUC counts (both classes); the bootstrap resamples these
    challenger_gauc: float
    champion_gauc: float
    challenger_logloss: float
    champion_logloss: float
    diff: PairedDifference  # GAUC(challenger) - GAUC(champion), paired over users

    @property
    def logloss_diff(self) -> float:
        return self.challenger_logloss - self.champion_logloss

    def as_tags(self) -> dict[str, str]:
        return {
            "h2h_slice": self.slice_label,
            "h2h_rows": str(self.rows),
            "h2h_users": str(self.users),
            "challenger_gauc": f"{self.challenger_gauc:.10g}",
            "champion_gauc": f"{self.champion_gauc:.10g}",
            "challenger_logloss": f"{self.challenger_logloss:.10g}",
            "champion_logloss": f"{self.champion_logloss:.10g}",
            "gauc_diff": f"{self.diff.diff:.10g}",
            "gauc_diff_low": f"{self.diff.low:.10g}",
            "gauc_diff_high": f"{self.diff.high:.10g}",
            "h2h_confidence": f"{self.diff.confidence:g}",
            "h2h_resamples": str(self.diff.resamples),
        }

    def as_metrics(self) -> dict[str, float]:
        return {
            "h2h_rows": float(self.rows),
            "h2h_users": float(self.users),
            "challenger_gauc": self.challenger_gauc,
            "champion_gauc": self.champion_gauc,
            "challenger_logloss": self.challenger_logloss,
            "champion_logloss": self.champion_logloss,
            "gauc_diff": self.diff.diff,
            "gauc_diff_low": self.diff.low,
            "gauc_diff_high": self.diff.high,
        }


class NoComparableUsers(ValueError):
    """No user of the slice has both a click and a non-click: GAUC cannot compare anything."""


def score_slice(
    user_ids: ArrayLike, labels: ArrayLike, scores: ArrayLike, slice_label: str
) -> SliceScore:
    """GAUC (with its users) and LogLoss of one model's scores on a slice."""
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    value, users = gauc(y, s, user_ids)
    return SliceScore(slice_label, int(y.shape[0]), int(users), value, log_loss(y, s))


def head_to_head(
    user_ids: ArrayLike,
    labels: ArrayLike,
    challenger_scores: ArrayLike,
    champion_scores: ArrayLike,
    policy: PromotionPolicy,
    slice_label: str,
) -> HeadToHead:
    """Both models' GAUC and LogLoss on the same rows, and the paired bootstrap interval."""
    challenger = score_slice(user_ids, labels, challenger_scores, slice_label)
    champion = score_slice(user_ids, labels, champion_scores, slice_label)
    if challenger.users == 0:
        raise NoComparableUsers(
            f"slice {slice_label}: none of its {challenger.rows} rows' users has both a click "
            "and a non-click, so GAUC compares nothing"
        )
    diff = paired_gauc_difference(
        user_ids,
        labels,
        challenger_scores,
        champion_scores,
        resamples=policy.resamples,
        seed=policy.seed,
        confidence=policy.confidence,
    )
    return HeadToHead(
        slice_label=slice_label,
        rows=challenger.rows,
        users=challenger.users,
        challenger_gauc=challenger.gauc,
        champion_gauc=champion.gauc,
        challenger_logloss=challenger.logloss,
        champion_logloss=champion.logloss,
        diff=diff,
    )


@dataclass(frozen=True)
class Decision:
    """Whether the challenger takes the alias, why (one line), and which rule decided."""

    promoted: bool
    reason: str
    kind: str  # first | promote | real_over_synthetic | keep | synthetic_over_real | ...


def needs_head_to_head(challenger: ModelIdentity, champion: ModelIdentity | None) -> bool:
    """Whether :func:`decide` can only decide with a head to head on the slice."""
    if champion is None or champion.version == challenger.version:
        return False
    if champion.synthetic != challenger.synthetic:
        return False
    return bool(champion.family) and champion.family == challenger.family


def _v(identity: ModelIdentity) -> str:
    return f"v{identity.version}" if identity.version is not None else "the challenger"


def decide(
    challenger: ModelIdentity,
    champion: ModelIdentity | None,
    h2h: HeadToHead | None,
    policy: PromotionPolicy,
) -> Decision:
    """Apply the champion rule (module docstring); the reason names the numbers it used."""
    new = _v(challenger)
    if champion is None:
        return Decision(True, f"first champion: {new} ({challenger.family or 'unknown family'})",
                        "first")  # fmt: skip
    old = _v(champion)
    if champion.version is not None and champion.version == challenger.version:
        return Decision(False, f"{new} already holds the alias", "already_champion")
    if champion.synthetic and not challenger.synthetic:
        return Decision(
            True,
            f"real data takes over: {new} ({challenger.family}) replaces synthetic-data "
            f"champion {old} ({champion.family}) without a head to head",
            "real_over_synthetic",
        )
    if challenger.synthetic and not champion.synthetic:
        return Decision(
            False,
            f"never synthetic over real: {new} learnt from synthetic data "
            f"({challenger.family}), champion {old} from real data ({champion.family})",
            "synthetic_over_real",
        )
    if not champion.family or champion.family != challenger.family:
        return Decision(
            False,
            f"different data family: {new} is {challenger.family or 'unknown'}, champion "
            f"{old} is {champion.family or 'unknown (no data_family tag)'}; to switch by "
            f"hand run `din champion --dataset {challenger.dataset} --set "
            f"{challenger.version or 'VERSION'}`",
            "other_family",
        )
    if h2h is None:
        return Decision(
            False,
            f"no head to head: {new} and champion {old} could not be compared on a slice "
            "(no user with both a click and a non-click)",
            "no_head_to_head",
        )
    interval = h2h.diff.formatted(marker="")
    gain_ok = h2h.diff.lies_above(policy.min_gain)
    logloss_ok = h2h.logloss_diff <= policy.logloss_tolerance
    numbers = (
        f"on slice {h2h.slice_label} ({h2h.users} users): GAUC {h2h.challenger_gauc:.4f} vs "
        f"{h2h.champion_gauc:.4f}, difference {interval} "
        f"({h2h.diff.confidence:.0%} interval); LogLoss {h2h.challenger_logloss:.4f} vs "
        f"{h2h.champion_logloss:.4f} ({h2h.logloss_diff:+.4f})"
    )
    if gain_ok and logloss_ok:
        return Decision(True, f"{new} beats champion {old} {numbers}", "promote")
    why = []
    if not gain_ok:
        why.append(f"the GAUC interval does not lie above {policy.min_gain:+.4f}")
    if not logloss_ok:
        why.append(f"LogLoss is worse by more than {policy.logloss_tolerance:.4f}")
    return Decision(
        False, f"champion {old} kept, {' and '.join(why)}: {new} {numbers}", "keep"
    )
