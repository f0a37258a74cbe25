"""The ablation comparison table: mean and spread over seeds, RelaImpr, paired ΔGAUC.

Follows the paper's tables: AUC, GAUC (the paper's user-weighted "AUC") and
LogLoss per model / regulariser, and RelaImpr measured on GAUC against
BaseModel (``base`` with no regulariser). RelaImpr is computed per seed
against the BaseModel cell of the same seed, so that seed-to-seed noise
shared by both models cancels, then averaged like the other metrics.

The spread is the sample std over seeds; with one seed there is none, and the
markdown says ``n/a`` rather than a misleading ``± 0.0000``. The paired GAUC
differences with their bootstrap intervals (:mod:`tasks.significance`) are
joined in as extra columns and shown as ``+0.0123 [+0.0040, +0.0210] *``,
the ``*`` marking an interval that excludes 0. :func:`table_metrics` flattens
the table into MLflow metric names for the parent run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from din_model.metrics import rela_impr
from din_model.metrics.paired_bootstrap import PairedDifference

BASELINE = ("base", "none")
METRICS = ("auc", "gauc", "logloss", "relaimpr")


@dataclass(frozen=True)
class CellResult:
    """Test metrics of one grid cell (one child run)."""

    model: str
    regularizer: str
    seed: int
    auc: float
    gauc: float
    logloss: float
    run_id: str = ""
    predictions: str = ""  # the cell's predictions.parquet (user_id, label, score per test row)

    @property
    def cell(self) -> str:
        return self.model if self.regularizer == "none" else f"{self.model}+{self.regularizer}"


def _relaimpr_per_seed(results: Sequence[CellResult]) -> list[float]:
    base_by_seed = {r.seed: r.gauc for r in results if (r.model, r.regularizer) == BASELINE}
    values = []
    for r in results:
        base = base_by_seed.get(r.seed)
        if base is None or base == 0.5 or math.isnan(base):
            values.append(float("nan"))
        else:
            values.append(rela_impr(r.gauc, base))
    return values


def comparison_table(results: Sequence[CellResult]) -> pl.DataFrame:
    """One row per (model, regulariser), in first-seen order, with ``<metric>_mean/_std``.

    ``_std`` is the sample standard deviation over seeds (0 for a single seed).
    ``relaimpr`` is null when the grid has no BaseModel cell for that seed.
    """
    frame = pl.DataFrame(
        {
            "cell": [r.cell for r in results],
            "model": [r.model for r in results],
            "regularizer": [r.regularizer for r in results],
            "seed": [r.seed for r in results],
            "auc": [r.auc for r in results],
            "gauc": [r.gauc for r in results],
            "logloss": [r.logloss for r in results],
            "relaimpr": _relaimpr_per_seed(results),
        },
        schema_overrides={m: pl.Float64 for m in METRICS},
    ).with_columns(pl.col("relaimpr").fill_nan(None))
    aggregations: list[pl.Expr] = [pl.col("seed").n_unique().alias("seeds")]
    for metric in METRICS:
        aggregations.append(pl.col(metric).mean().alias(f"{metric}_mean"))
        aggregations.append(pl.col(metric).std(ddof=1).fill_null(0.0).alias(f"{metric}_std"))
    table = frame.group_by(["cell", "model", "regularizer"], maintain_order=True).agg(aggregations)
    no_base = table["relaimpr_mean"].is_null()
    return table.with_columns(
        pl.when(no_base).then(None).otherwise(pl.col("relaimpr_std")).alias("relaimpr_std")
    )


SIGNIFICANCE_COLUMNS = ("vs_base_diff", "vs_base_low", "vs_base_high", "reference")


def with_significance(table: pl.DataFrame, rows: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """The table with the paired ΔGAUC columns of :func:`tasks.significance.paired_comparisons`."""
    if not rows:
        return table
    schema = {
        "cell": pl.String,
        "vs_base_diff": pl.Float64,
        "vs_base_low": pl.Float64,
        "vs_base_high": pl.Float64,
        "reference": pl.String,
        "vs_ref_diff": pl.Float64,
        "vs_ref_low": pl.Float64,
        "vs_ref_high": pl.Float64,
        "paired_users": pl.Int64,
        "resamples": pl.Int64,
        "bootstrap_seed": pl.Int64,
    }
    extra = pl.DataFrame([{k: row.get(k) for k in schema} for row in rows], schema=schema)
    return table.join(extra, on="cell", how="left", maintain_order="left")


def _fmt(mean: Any, std: Any, digits: int, suffix: str = "", seeds: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    spread = "n/a" if seeds < 2 or std is None else f"{std:.{digits}f}{suffix}"
    return f"{mean:.{digits}f}{suffix} ± {spread}"


def _fmt_diff(row: dict[str, Any], prefix: str) -> str:
    diff = row.get(f"{prefix}_diff")
    if diff is None or math.isnan(diff):
        return "—"
    low, high = row[f"{prefix}_low"], row[f"{prefix}_high"]
    return PairedDifference(diff, low, high, 0, 0, 0).formatted()


def significance_caption(table: pl.DataFrame) -> str:
    """How to read the ΔGAUC columns: what is paired, resampled and averaged."""
    if "vs_base_diff" not in table.columns:
        return ""
    users = table["paired_users"].drop_nulls()
    if users.is_empty():
        return ""
    multi = int(table["seeds"].max() or 1) > 1
    resamples = int(table["resamples"].drop_nulls()[0])
    seed = int(table["bootstrap_seed"].drop_nulls()[0])
    text = (
        "ΔGAUC [95% CI]: paired difference in test GAUC against BaseModel, and against the "
        "row's reference (DIN for DIN+Dice, the unregularised model for a regularised row), "
        f"on the same {int(users[0])} test users (those with a positive and a negative row). "
        f"The interval is a 95% percentile bootstrap over {resamples} resamples of the test "
        f"users with replacement (seed {seed}); * marks an interval that excludes 0."
    )
    if multi:
        text += (
            " With several seeds, each user's AUC is first averaged over the seeds of each "
            "model, then the users are resampled: the ΔGAUC is the difference of the mean "
            "GAUCs and its interval covers the choice of test users, not of seeds (that is "
            "the ± spread)."
        )
    return text


def comparison_markdown(table: pl.DataFrame, title: str = "") -> str:
    """The table as GitHub markdown, values as ``mean ± std`` over seeds (``± n/a``: one seed)."""
    significance = "vs_base_diff" in table.columns
    lines = []
    if title:
        lines += [f"### {title}", ""]
    header = "| model | regulariser | seeds | AUC | GAUC | LogLoss | RelaImpr (GAUC vs base) |"
    rule = "|---|---|---:|---:|---:|---:|---:|"
    if significance:
        header += " ΔGAUC vs base [95% CI] | ΔGAUC vs reference [95% CI] |"
        rule += "---:|---:|"
    lines += [header, rule]
    for row in table.iter_rows(named=True):
        seeds = row["seeds"]
        line = "| {model} | {reg} | {seeds} | {auc} | {gauc} | {logloss} | {rel} |".format(
            model=row["model"],
            reg=row["regularizer"],
            seeds=seeds,
            auc=_fmt(row["auc_mean"], row["auc_std"], 4, seeds=seeds),
            gauc=_fmt(row["gauc_mean"], row["gauc_std"], 4, seeds=seeds),
            logloss=_fmt(row["logloss_mean"], row["logloss_std"], 4, seeds=seeds),
            rel=_fmt(row["relaimpr_mean"], row["relaimpr_std"], 2, "%", seeds=seeds),
        )
        if significance:
            versus = _fmt_diff(row, "vs_ref")
            if row.get("reference") and versus != "—":
                versus = f"vs {row['reference']}: {versus}"
            line += f" {_fmt_diff(row, 'vs_base')} | {versus} |"
        lines.append(line)
    if table["relaimpr_mean"].is_null().all():
        lines += ["", "RelaImpr needs a BaseModel cell (model `base`, regulariser `none`)."]
    caption = significance_caption(table)
    if caption:
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def metric_key(cell: str) -> str:
    """A cell label as an MLflow metric name part: ``din+mba`` -> ``din_mba``."""
    return cell.replace("+", "_")


def table_metrics(table: pl.DataFrame) -> dict[str, float]:
    """The table as parent-run metrics, one name per row and value, sortable in the MLflow UI.

    ``gauc_<cell>`` (and ``auc_``, ``logloss_``, ``relaimpr_``) are the means over
    seeds, ``gauc_std_<cell>`` the spread (only with several seeds),
    ``gauc_diff_<cell>_vs_base`` with ``_low``/``_high`` the paired difference and
    its interval, ``gauc_diff_<cell>_vs_<reference>`` the same against the reference.
    Missing values (no BaseModel cell, no reference) are left out.
    """
    metrics: dict[str, float] = {}
    for row in table.iter_rows(named=True):
        key = metric_key(row["cell"])
        for metric in METRICS:
            metrics[f"{metric}_{key}"] = row[f"{metric}_mean"]
        if row["seeds"] > 1:
            metrics[f"gauc_std_{key}"] = row["gauc_std"]
        targets = [("vs_base", "base")]
        if row.get("reference"):
            targets.append(("vs_ref", metric_key(row["reference"])))
        for prefix, versus in targets:
            if row.get(f"{prefix}_diff") is None:
                continue
            name = f"gauc_diff_{key}_vs_{versus}"
            metrics[name] = row[f"{prefix}_diff"]
            metrics[f"{name}_low"] = row[f"{prefix}_low"]
            metrics[f"{name}_high"] = row[f"{prefix}_high"]
    return {k: float(v) for k, v in metrics.items() if v is not None}
