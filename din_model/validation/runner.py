"""Run a Great Expectations suite on a pandas frame and turn failures into readable text.

GE runs in an ephemeral context (nothing written to disk, no ``gx/`` tree),
with its progress bars and analytics off. A failed suite becomes a
:class:`ValidationFailed` whose summary says, per failed expectation, which
suite and batch, which expectation on which column(s), how many rows were
unexpected and a few example bad values -- enough to find the bug without
opening the JSON result.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pandas as pd
import polars as pl

from din_model.errors import ConfigError, ValidationFailed
from din_model.validation.suites import suite_parameters

log = logging.getLogger(__name__)

EXAMPLES = 5
_BOUNDS = ("min_value", "max_value", "value_set", "value", "or_equal", "strict_min", "strict_max")


def _great_expectations() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GE logs every registration at INFO on import; the CLI's INFO root would show it all
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx

    # one GE module pins its own logger to INFO ("Created temporary directory ...")
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    return gx


def pandas_frame(frame: pl.DataFrame) -> pd.DataFrame:
    """``frame`` in the form GE validates fastest (GE does not take polars frames).

    GE fingerprints every batch by hashing the whole pandas frame, twice per
    run: arrow-backed strings make that seconds per million rows, categoricals
    (hashed through their codes) milliseconds. Its range checks are also ~8x
    slower on int8/int32 than on int64 columns. Values are unchanged.
    """
    casts = {}
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            casts[name] = pl.Categorical()
        elif dtype.is_integer():
            casts[name] = pl.Int64()
    return frame.cast(casts).to_pandas()


def run_suite(
    suite: dict[str, Any],
    frame: pl.DataFrame,
    parameters: dict[str, Any],
    *,
    batch: str,
    index_columns: list[str] | None = None,
) -> dict[str, Any]:
    """Validate ``frame`` against ``suite`` with its suite parameters bound.

    ``index_columns`` are reported next to every example bad value (e.g. the
    split it comes from). Returns a JSON-ready dict: suite, batch, rows,
    success, statistics, parameters and one entry per expectation (GE's
    ``describe_dict``).
    """
    missing = suite_parameters(suite) - set(parameters)
    if missing:
        raise ConfigError(f"suite {suite['name']!r} needs parameters {sorted(missing)}")
    gx = _great_expectations()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("din").add_dataframe_asset(batch)
    definition = asset.add_batch_definition_whole_dataframe(batch)
    gx_batch = definition.get_batch(batch_parameters={"dataframe": pandas_frame(frame)})
    gx_suite = gx.ExpectationSuite(**suite)
    result_format: dict[str, Any] = {"result_format": "SUMMARY"}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    result = gx_batch.validate(
        gx_suite, expectation_parameters=parameters, result_format=result_format
    )
    described = result.describe_dict()
    for entry in described["expectations"]:
        entry["kwargs"].pop("batch_id", None)
    return {
        "suite": suite["name"],
        "batch": batch,
        "rows": len(frame),
        "success": bool(result.success),
        "statistics": described["statistics"],
        "parameters": parameters,
        "expectations": described["expectations"],
    }


def _plain(value: Any) -> Any:
    """Numbers as a reader writes them: 41 not 41.0, 0.513158 not np.float64(0.51315789...)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, float):
        return int(value) if value.is_integer() else round(value, 6)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


def _examples(result: dict[str, Any]) -> list[Any]:
    """Example bad values, each with its index columns (e.g. ``42 (train)``) when known."""
    values = _plain((result.get("partial_unexpected_list") or [])[:EXAMPLES])
    names = result.get("unexpected_index_column_names") or []
    rows = result.get("partial_unexpected_index_list") or []
    if not names or len(rows) < len(values):
        return values
    return [
        _Shown(f"{value!r} ({', '.join(str(row.get(n)) for n in names)})")
        for value, row in zip(values, rows, strict=False)
    ]


class _Shown(str):
    """A string shown without quotes inside a list."""

    def __repr__(self) -> str:
        return str(self)


def _columns(kwargs: dict[str, Any]) -> str:
    condition = kwargs.get("row_condition")
    where = ""
    if isinstance(condition, dict) and condition.get("type") == "comparison":
        column = condition["column"]["name"]
        where = f" where {column} {condition['operator']} {condition['parameter']!r}"
    elif condition:
        where = f" where {condition}"
    if "column" in kwargs:
        return f"column '{kwargs['column']}'{where}"
    if "column_A" in kwargs:
        return f"columns '{kwargs['column_A']}' vs '{kwargs['column_B']}'"
    if "column_list" in kwargs:
        return f"columns {kwargs['column_list']}"
    return "the table"


def describe_failure(run: dict[str, Any], entry: dict[str, Any]) -> str:
    """One line per failed expectation: what, where, how many, examples."""
    kwargs = entry.get("kwargs") or {}
    bounds = ", ".join(f"{k}={_plain(kwargs[k])}" for k in _BOUNDS if k in kwargs)
    head = f"{entry['expectation_type']} on {_columns(kwargs)}" + (f" ({bounds})" if bounds else "")
    info = entry.get("exception_info") or {}
    if info.get("raised_exception"):
        return f"{head}: could not run: {info.get('exception_message')}"
    result = entry.get("result") or {}
    if "unexpected_count" in result:
        count = result["unexpected_count"]
        total = result.get("element_count", run["rows"])
        examples = _examples(result)
        return f"{head}: {count:,} of {total:,} rows unexpected, e.g. {examples}"
    return f"{head}: observed {_plain(result.get('observed_value'))!r}"


def summarize(runs: list[dict[str, Any]]) -> str:
    """Readable text of every failed expectation over ``runs`` (empty when all passed)."""
    lines = []
    for run in runs:
        failed = [e for e in run["expectations"] if not e["success"]]
        if not failed:
            continue
        stats = run["statistics"]
        lines.append(
            f"suite '{run['suite']}' on {run['batch']} ({run['rows']:,} rows): "
            f"{len(failed)} of {stats['evaluated_expectations']} expectations failed"
        )
        lines.extend(f"  - {describe_failure(run, entry)}" for entry in failed)
    return "\n".join(lines)


def check(runs: list[dict[str, Any]], stage: str) -> dict[str, Any]:
    """Bundle the runs of one stage; raise :class:`ValidationFailed` if any failed."""
    outcome = {
        "stage": stage,
        "success": all(run["success"] for run in runs),
        "runs": runs,
    }
    if not outcome["success"]:
        raise ValidationFailed(f"{stage} validation failed:\n{summarize(runs)}", outcome)
    log.info(
        "%s validation passed: %d suites, %d expectations",
        stage,
        len(runs),
        sum(run["statistics"]["evaluated_expectations"] for run in runs),
    )
    return outcome
