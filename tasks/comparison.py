"""The ablation comparison table: mean and spread over seeds, RelaImpr against BaseModel.

Follows the paper's tables: AUC, GAUC (the paper's user-weighted "AUC") and
LogLoss per model / regulariser, and RelaImpr measured on GAUC against
BaseModel (``base`` with no regulariser). RelaImpr is computed per seed
against the BaseModel cell of the same seed, so that seed-to-seed noise
shared by both models cancels, then averaged like the other metrics.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from din_model.metrics import rela_impr

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


def _fmt(mean: Any, std: Any, digits: int, suffix: str = "") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    return f"{mean:.{digits}f}{suffix} ± {std:.{digits}f}{suffix}"


def comparison_markdown(table: pl.DataFrame, title: str = "") -> str:
    """The table as GitHub markdown, values as ``mean ± std`` over seeds."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| model | regulariser | seeds | AUC | GAUC | LogLoss | RelaImpr (GAUC vs base) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for row in table.iter_rows(named=True):
        lines.append(
            "| {model} | {reg} | {seeds} | {auc} | {gauc} | {logloss} | {rel} |".format(
                model=row["model"],
                reg=row["regularizer"],
                seeds=row["seeds"],
                auc=_fmt(row["auc_mean"], row["auc_std"], 4),
                gauc=_fmt(row["gauc_mean"], row["gauc_std"], 4),
                logloss=_fmt(row["logloss_mean"], row["logloss_std"], 4),
                rel=_fmt(row["relaimpr_mean"], row["relaimpr_std"], 2, "%"),
            )
        )
    if table["relaimpr_mean"].is_null().all():
        lines += ["", "RelaImpr needs a BaseModel cell (model `base`, regulariser `none`)."]
    return "\n".join(lines) + "\n"
