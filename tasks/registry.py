"""Model registry: ``din-<dataset>`` and the ``champion`` alias rule.

A scheduled retrain must not replace a good model with a worse one, so a new
version takes the alias ``champion`` only when its validation GAUC (the
metric early stopping selects on; test is never used for decisions) is
strictly higher than the current champion's. Either way the run and the
version carry the decision and its reason as tags, so the registry explains
itself. The check-then-set is not atomic across processes: two retrains of
the same dataset finishing at the same moment may both compare against the
old champion (the later alias write wins).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
VALID_GAUC_TAG = "valid_gauc"
VALID_GAUC_METRIC = "best_valid_gauc"


def registered_model_name(dataset: str) -> str:
    return f"din-{dataset}"


@dataclass(frozen=True)
class PromotionDecision:
    promoted: bool
    reason: str
    version: str
    previous_champion: str | None = None
    previous_gauc: float | None = None

    def as_run_tags(self) -> dict[str, str]:
        tags = {
            "champion_promoted": str(self.promoted).lower(),
            "champion_decision": self.reason,
            "registered_version": self.version,
        }
        if not self.promoted:
            tags["not_promoted_reason"] = self.reason
        return tags


def _champion_gauc(client, name: str, version) -> float | None:
    """Validation GAUC of a registered version: its tag, else its run's metric."""
    raw = (version.tags or {}).get(VALID_GAUC_TAG)
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            logger.warning("%s v%s has a non-numeric %s tag", name, version.version, VALID_GAUC_TAG)
    if version.run_id:
        metrics = client.get_run(version.run_id).data.metrics
        if VALID_GAUC_METRIC in metrics:
            return float(metrics[VALID_GAUC_METRIC])
    return None


def current_champion(client, name: str):
    """The version holding the champion alias, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


def promote_if_better(name: str, version: str, valid_gauc: float, run_id: str) -> PromotionDecision:
    """Apply the champion rule to a freshly registered ``version`` and record the decision."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.set_model_version_tag(name, version, VALID_GAUC_TAG, f"{valid_gauc:.10g}")
    champion = current_champion(client, name)
    previous_gauc = None
    if math.isnan(valid_gauc):
        decision = PromotionDecision(
            False, f"validation GAUC is NaN (no user with both classes); v{version} kept", version
        )
    elif champion is None:
        decision = PromotionDecision(
            True,
            f"first champion of {name}: v{version} with validation GAUC {valid_gauc:.4f}",
            version,
        )
    else:
        previous_gauc = _champion_gauc(client, name, champion)
        if previous_gauc is None or math.isnan(previous_gauc):
            decision = PromotionDecision(
                True,
                f"champion v{champion.version} has no validation GAUC; v{version} "
                f"({valid_gauc:.4f}) takes over",
                version,
                champion.version,
            )
        elif valid_gauc > previous_gauc:
            decision = PromotionDecision(
                True,
                f"validation GAUC {valid_gauc:.4f} beats champion v{champion.version} "
                f"({previous_gauc:.4f})",
                version,
                champion.version,
                previous_gauc,
            )
        else:
            decision = PromotionDecision(
                False,
                f"validation GAUC {valid_gauc:.4f} does not beat champion v{champion.version} "
                f"({previous_gauc:.4f}, run {champion.run_id})",
                version,
                champion.version,
                previous_gauc,
            )
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
    client.set_model_version_tag(name, version, "champion_decision", decision.reason)
    for key, value in decision.as_run_tags().items():
        client.set_tag(run_id, key, value)
    logger.debug("%s v%s: %s", name, version, decision.reason)
    return decision
