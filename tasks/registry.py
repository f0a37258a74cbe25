"""Model registry: ``din-<dataset>``, its ``champion`` alias, and what the model says of itself.

Which version holds the alias is decided by :mod:`tasks.champion` (the challenger
and the champion head to head on the same held-back slice, under a lock) and
recorded by :mod:`tasks.champion_history`; this module names the model and finds
the current champion.

Descriptions (:func:`describe_registration`): the registered model says what it
is and which raw request columns it takes; each version says its model,
regulariser, data source and fingerprint, validation/test GAUC and run.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from din_model.data.samples.raw_inputs import RawInput

logger = logging.getLogger(__name__)

CHAMPION_ALIAS = "champion"
VALID_GAUC_METRIC = "best_valid_gauc"


def registered_model_name(dataset: str) -> str:
    return f"din-{dataset}"


def current_champion(client, name: str):
    """The version holding the champion alias, or None when there is none yet."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION_ALIAS)
    except MlflowException:
        return None


#: Where the README explains requests (a path: the MLflow UI cannot link into the repository).
README_SERVING = "README.md#serving"
_GROUP_WORDS = {"user_profile": "the user's", "ad": "the candidate's", "context": "the event's"}


def _column_notes(inputs: list[RawInput], example_columns: list[str]) -> list[tuple[str, str]]:
    """(request column, what it holds): the required columns first, then the optional ones."""
    notes: dict[str, str] = {}
    optional: set[str] = set()
    derived: dict[str, list[str]] = {}
    for raw in inputs:
        if raw.derived:
            derived.setdefault(raw.column, []).append(raw.derived)
            continue
        if raw.kind == "sequence":
            text = f"list of raw `{raw.source}` values of the user's history, oldest first"
        else:
            text = f"{_GROUP_WORDS.get(raw.group, 'the')} raw `{raw.source}`"
        if raw.from_items:
            text += "; optional: looked up by item id when left out"
            optional.add(raw.column)
        notes.setdefault(raw.column, text)
    for column, parts in derived.items():
        notes.setdefault(column, f"unix seconds; {' and '.join(parts)} are derived from it")
    for column in example_columns:
        if column not in notes:
            notes[column] = "optional: not a model input"
            optional.add(column)
    ordered = [c for c in notes if c not in optional] + [c for c in notes if c in optional]
    return [(c, notes[c]) for c in ordered]


def model_description(
    name: str, dataset: str, inputs: list[RawInput], example_columns: list[str]
) -> str:
    """What ``din-<dataset>`` is and how to call it (markdown, shown on the model's page)."""
    lines = [
        f"DIN-pipeline click-through-rate model for the `{dataset}` dataset: a pyfunc that "
        "takes raw requests (owner-form ids, the event's time, the user's history) and "
        "returns one click probability per row. It encodes requests itself with the "
        "vocabularies of its training run; an id training never saw is out-of-vocabulary.",
        "",
        f'Call it: `mlflow.pyfunc.load_model("models:/{name}@{CHAMPION_ALIAS}")'
        ".predict(pandas_dataframe)`; over HTTP: `mlflow models serve -m "
        f"models:/{name}@{CHAMPION_ALIAS} --env-manager local`, then POST "
        '`{"dataframe_records": [...]}` to `/invocations`; in batch: '
        f"`din score --model models:/{name}@{CHAMPION_ALIAS} --input FILE --out FILE`.",
        "",
        "Request columns (one row per candidate):",
        "",
    ]
    lines += [f"- `{column}`: {note}" for column, note in _column_notes(inputs, example_columns)]
    lines += [
        "",
        f"More in the project README, section Serving (`{README_SERVING}`). Each version's "
        f"description names its model, regulariser, data and scores; `@{CHAMPION_ALIAS}` "
        "is the version that beat the previous champion head to head on the same fresh data "
        "(its tags say by how much), or was set by hand with `din champion --set`.",
    ]
    return "\n".join(lines)


def _score(metrics: dict[str, float], key: str) -> str:
    value = metrics.get(key)
    return "n/a" if value is None else f"{value:.4f}"


def version_description(run: Any) -> str:
    """Model, regulariser, data source and fingerprint, validation/test GAUC and run id."""
    tags, metrics = run.data.tags, run.data.metrics
    source = tags.get("source_label") or tags.get("source", "unknown source")
    return (
        f"`{tags.get('model', '?')}` with regulariser `{tags.get('regularizer', '?')}`, "
        f"trained on `{tags.get('dataset', '?')}` data `{source}` "
        f"({tags.get('data_source', 'unknown')}; data fingerprint "
        f"`{tags.get('data_fingerprint', tags.get('source_fingerprint', 'unknown'))}`). "
        f"Validation GAUC {_score(metrics, VALID_GAUC_METRIC)}, "
        f"test GAUC {_score(metrics, 'test_gauc')} "
        f"(test AUC {_score(metrics, 'test_auc')}, LogLoss {_score(metrics, 'test_logloss')}). "
        f"Run `{run.info.run_id}` ({run.info.run_name})."
    )


def describe_registration(name: str, version: str, run_id: str, serving_dir: str | Path) -> None:
    """Set the descriptions of ``name`` (how to call it) and of its new ``version``.

    The model's description is rewritten at every registration from the new
    version's request schema (``serving/raw_inputs.json`` and the example's columns).
    """
    import polars as pl
    from mlflow import MlflowClient

    from din_model.data.samples.raw_inputs import EXAMPLE_FILE, read_raw_inputs

    client = MlflowClient()
    run = client.get_run(run_id)
    serving = Path(serving_dir)
    example = serving / EXAMPLE_FILE
    columns = list(pl.read_parquet_schema(example)) if example.is_file() else []
    dataset = run.data.tags.get("dataset") or name.removeprefix("din-")
    description = model_description(name, dataset, read_raw_inputs(serving), columns)
    client.update_registered_model(name, description=description)
    client.update_model_version(name, version, description=version_description(run))
