"""Judge a freshly registered challenger against the champion, and move the alias if it wins.

The rule itself is :mod:`din_model.pipeline.promotion`; this module does what needs
MLflow: it reads the champion (fresh, under the champion lock of
:mod:`tasks.champion_lock`), finds what data each version learnt from (the
``data_family`` and ``data_source`` tags of the version, else of its run), scores the
slice through BOTH registered raw-request models (``models:/<name>/<version>``: each
encodes the raw ids with its own vocabularies, so the two may differ freely), moves
the alias, records the move (:mod:`tasks.champion_history`) and writes the numbers
and the reason as tags on the challenger's run and version (metrics on the run).

Scoring happens inside the lock: a second retrain finishing meanwhile waits, then is
judged against whatever the first one left as champion.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import polars as pl

from din_model.errors import ConfigError
from din_model.pipeline.promotion import (
    HeadToHead,
    ModelIdentity,
    NoComparableUsers,
    PromotionPolicy,
    SliceScore,
    decide,
    head_to_head,
    needs_head_to_head,
    score_slice,
)
from tasks.champion_history import record_alias_move
from tasks.champion_lock import champion_lock
from tasks.registry import CHAMPION_ALIAS, current_champion

logger = logging.getLogger(__name__)

FAMILY_TAG = "data_family"
SOURCE_TAG = "data_source"
LABEL = "label"
USER = "user_id"


def version_identity(client: Any, version: Any) -> ModelIdentity:
    """A registered version's data family and real/synthetic, from its tags or its run's."""
    tags = dict(version.tags or {})
    if (FAMILY_TAG not in tags or SOURCE_TAG not in tags) and version.run_id:
        run_tags = client.get_run(version.run_id).data.tags
        for key in (FAMILY_TAG, SOURCE_TAG):
            tags.setdefault(key, run_tags.get(key))
    family = tags.get(FAMILY_TAG) or ""
    synthetic = tags.get(SOURCE_TAG) == "synthetic" or family.endswith("/synthetic")
    return ModelIdentity(str(version.version), family, synthetic)


def registered_scores(name: str, version: str, requests: pl.DataFrame) -> np.ndarray:
    """Click probabilities of ``requests`` (raw request columns) by ``models:/name/version``."""
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return np.asarray(model.predict(requests.to_pandas()), dtype=np.float64).ravel()


def _check_slice(frame: pl.DataFrame, slice_label: str) -> None:
    missing = [c for c in (LABEL, USER) if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"slice {slice_label}: the raw request frame has no {' or '.join(missing)} column "
            f"(columns: {', '.join(frame.columns)})"
        )


def _score(
    name: str,
    version: str,
    champion: str | None,
    frame: pl.DataFrame,
    slice_label: str,
    policy: PromotionPolicy,
) -> tuple[SliceScore | None, HeadToHead | None]:
    """The challenger alone on the slice, or both head to head when ``champion`` is given."""
    if frame.height == 0:
        logger.warning("slice %s is empty: nothing to score", slice_label)
        return None, None
    requests = frame.drop(LABEL)
    users, labels = frame[USER].to_numpy(), frame[LABEL].to_numpy()
    challenger_scores = registered_scores(name, version, requests)
    alone = score_slice(users, labels, challenger_scores, slice_label)
    if champion is None:
        return alone, None
    champion_scores = registered_scores(name, champion, requests)
    try:
        return alone, head_to_head(
            users, labels, challenger_scores, champion_scores, policy, slice_label
        )
    except NoComparableUsers as exc:
        logger.warning("%s", exc)
        return alone, None


def _write_outcome(
    client: Any, name: str, version: str, run_id: str, tags: dict[str, str],
    metrics: dict[str, float],
) -> None:  # fmt: skip
    """The same tags on the run and the version; the numeric ones as run metrics."""
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in metrics.items() if not math.isnan(v)],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def judge_and_promote(
    name: str,
    version: str,
    run_id: str,
    slice_frame: pl.DataFrame,
    slice_label: str,
    challenger: ModelIdentity,
    policy: PromotionPolicy,
) -> dict[str, Any]:
    """Judge ``name`` v``version`` against the champion on the slice; move the alias if it wins.

    ``slice_frame`` holds raw request columns (``user_id`` among them) plus ``label``.
    Returns ``version``, ``promoted``, ``decision`` (the reason), ``kind``,
    ``champion_version`` (the champion it was judged against, None for the first),
    ``h2h`` (:meth:`HeadToHead.as_metrics`, or None without a head to head) and
    ``challenger`` (its GAUC and LogLoss on the slice, or None for an empty slice).
    """
    from mlflow import MlflowClient

    _check_slice(slice_frame, slice_label)
    client = MlflowClient()
    version = str(version)
    challenger = ModelIdentity(version, challenger.family, challenger.synthetic)
    for key, value in ((FAMILY_TAG, challenger.family),
                       (SOURCE_TAG, "synthetic" if challenger.synthetic else "real")):  # fmt: skip
        client.set_model_version_tag(name, version, key, value)
    with champion_lock(name):
        current = current_champion(client, name)
        champion = None if current is None else version_identity(client, current)
        against = champion.version if needs_head_to_head(challenger, champion) else None
        alone, h2h = _score(name, version, against, slice_frame, slice_label, policy)
        decision = decide(challenger, champion, h2h, policy)
        previous = None if champion is None else champion.version
        if decision.promoted:
            client.set_registered_model_alias(name, CHAMPION_ALIAS, version)
            record_alias_move(
                name, version=version, previous=previous, reason=decision.reason,
                kind="first" if decision.kind == "first" else "promote", run_id=run_id,
            )  # fmt: skip
        tags: dict[str, str] = {}
        metrics: dict[str, float] = {}
        if alone is not None:
            tags.update(alone.as_tags())
            metrics.update(alone.as_metrics())
        if h2h is not None:
            tags.update(h2h.as_tags())
            metrics.update(h2h.as_metrics())
        tags.update(
            champion_version=previous or "",
            champion_decision=decision.reason,
            champion_promoted=str(decision.promoted).lower(),
            champion_rule=decision.kind,
            registered_version=version,
        )
        if not decision.promoted:
            tags["not_promoted_reason"] = decision.reason
        _write_outcome(client, name, version, run_id, tags, metrics)
    logger.info("%s v%s: %s", name, version, decision.reason)
    return {
        "version": version,
        "promoted": decision.promoted,
        "decision": decision.reason,
        "kind": decision.kind,
        "champion_version": previous,
        "h2h": None if h2h is None else h2h.as_metrics(),
        "challenger": None if alone is None else alone.as_metrics(),
    }
