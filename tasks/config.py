"""Config resolution as a Prefect task: the same layering as ``din train``.

The flow's own parameters (seed, regulariser) are appended as the last
overrides, so a run's recorded config is exactly what it trained with.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from din_model.errors import ConfigError
from din_model.registry import REGULARIZER_NAMES, model_names


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    """Fail fast, before any data step, on a misspelt parameter."""
    if value not in choices:
        raise ConfigError(f"unknown {what} '{value}'; choose one of {', '.join(choices)}")


@task(name="resolve-config", cache_policy=NO_CACHE)
def resolve_run_config(
    model: str,
    dataset: str,
    regularizer: str,
    seed: int,
    overrides: list[str],
    config_file: str | None,
) -> dict[str, Any]:
    """The layered config of one run; the flow's seed and regulariser win over files."""
    from din_model.config import resolve_config

    check_choice("model", model, model_names())
    check_choice("regulariser", regularizer, REGULARIZER_NAMES)
    forced = [f"train.seed={seed}", f"regularizer.name={regularizer}"]
    return resolve_config(model, dataset, config_file=config_file, overrides=[*overrides, *forced])
