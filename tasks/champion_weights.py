"""The champion's weights for a warm-started retrain, fetched from the registry.

A warm start copies the champion's parameters into the challenger for every raw id
both vocabularies share (:mod:`din_model.training.warm_start`). The champion is
whatever holds the alias when the retrain starts; its checkpoint and serving
tables (which carry its vocabularies) are downloaded into the run's folder, so the
run can be re-read later without the registry. No champion yet means a cold start,
said in the log, not an error: the first retrain of a schedule has nothing to start from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

if TYPE_CHECKING:
    from din_model.training.warm_start import WarmStartSource


@task(name="fetch-champion-weights", cache_policy=NO_CACHE)
def champion_weights(registered_name: str, folder: str) -> WarmStartSource | None:
    """The champion's checkpoint and serving folder under ``folder``, or None without one."""
    from din_model.errors import ConfigError
    from din_model.training.warm_start import WarmStartSource
    from tasks.model_source import download_model, resolve_model
    from tasks.registry import CHAMPION_ALIAS

    logger = get_run_logger()
    uri = f"models:/{registered_name}@{CHAMPION_ALIAS}"
    try:
        resolved = resolve_model(uri)
    except ConfigError:
        logger.info("warm start: %s has no champion yet; training from scratch", registered_name)
        return None
    checkpoint, serving = download_model(resolved, Path(folder))
    logger.info("warm start from %s", resolved.describe())
    return WarmStartSource(checkpoint=checkpoint, serving=serving)
