"""Does a retrain have anything new to learn from? The retrain key and the last run that had it.

A scheduled retrain with unchanged data, config and seed reproduces the model it
trained last time (training is deterministic on CPU), so registering it again only
adds a version. Every ``din-train`` run carries a ``retrain_key`` tag: a digest of
what decides the model (the raw data's fingerprint, which for an arriving source
covers every arrival, the resolved config, model, regulariser, seed, window and
warm start) and the registered model it is for. With ``skip_unchanged`` the flow
looks for the newest FINISHED run of the dataset's experiment with the same key
and, if there is one, ends early: "no new data since run X", nothing trained,
nothing registered, no MLflow run opened.

A run that failed does not count: its retrain must still happen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RETRAIN_KEY_TAG = "retrain_key"


def retrain_key(
    *,
    dataset: str,
    source_fingerprint: str,
    model: str,
    regularizer: str,
    seed: int,
    config: Mapping[str, Any],
    window: str | None,
    warm_start: bool,
    registered_name: str,
) -> str:
    """The digest of everything that decides a retrained model (stable across processes).

    ``registered_name`` is part of it: a run for another registered model (a replay's
    own) has not trained anything for this one.
    """
    payload = {
        "dataset": dataset,
        "registered_model": registered_name,
        "data": source_fingerprint,
        "model": model,
        "regularizer": regularizer,
        "seed": seed,
        "config": config,
        "window": window or "",
        "warm_start": bool(warm_start),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return "rk-" + hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PreviousRun:
    """The finished run that already trained on this data with this config."""

    run_id: str
    run_name: str
    version: str | None

    def message(self) -> str:
        registered = f", model version {self.version}" if self.version else ""
        return f"no new data since run {self.run_id} ({self.run_name}{registered})"


def previous_run_with_key(experiment_id: str, key: str) -> PreviousRun | None:
    """The newest FINISHED run of the experiment tagged with ``key``, or None."""
    from tasks.tracking import client

    runs = client().search_runs(
        [experiment_id],
        filter_string=f"tags.{RETRAIN_KEY_TAG} = '{key}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    return PreviousRun(
        run.info.run_id, run.info.run_name or "", run.data.tags.get("registered_version")
    )
