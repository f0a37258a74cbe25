"""Paired significance of an ablation: the GAUC gap of each row with a bootstrap interval.

The mean ± spread over seeds says how much training noise there is, not
whether a gap between two models would survive another draw of test users.
Every cell of an ablation scores the same test rows (the grid shares one
prepared folder, ``data_seed``), so two cells can be compared *paired*: the
GAUC difference on the same users, with a 95% percentile bootstrap interval
from resampling the test users (:mod:`din_model.metrics.paired_bootstrap`).

Each row is compared with BaseModel (the paper's baseline) and, where the
grid has it, with the cell it is a variation of: DIN+Dice with DIN (the same
network with another activation), a regularised cell with the same model
unregularised (does the regulariser help?).

With several seeds, each user's AUC is averaged over the seeds of each model
before the users are resampled: the point estimate is the difference of the
mean GAUCs the table shows, the interval its test-user uncertainty.

The cells' ``predictions.parquet`` files are read from their run folders; they
must hold the same (user, label) rows in the same order, or the comparison
stops with a message naming the two files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.errors import DinError
from din_model.metrics.paired_bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    PairedDifference,
    RowsMismatch,
    paired_gauc_difference,
    require_same_rows,
)
from tasks.comparison import BASELINE, CellResult

DEFAULT_BOOTSTRAP_SEED = 0
# A model that is another model with one change (the paper's DIN+Dice row is DIN with Dice).
VARIANT_OF = {"din_dice": "din"}

Cell = tuple[str, str]


class UnpairedPredictions(DinError):
    """Two cells of one ablation were scored on different test rows."""


@dataclass(frozen=True)
class CellPredictions:
    """The test scores of one cell: one row of ``scores`` per seed, in ``seeds`` order."""

    seeds: tuple[int, ...]
    scores: np.ndarray  # (seeds, rows)


def reference_cell(model: str, regularizer: str) -> Cell | None:
    """The cell this one varies: the unregularised model, or the model it is a variant of."""
    if regularizer != "none":
        return (model, "none")
    if model in VARIANT_OF:
        return (VARIANT_OF[model], "none")
    return None


def cell_label(cell: Cell) -> str:
    model, regularizer = cell
    return model if regularizer == "none" else f"{model}+{regularizer}"


def _read(path: str) -> pl.DataFrame:
    return pl.read_parquet(path, columns=["user_id", "label", "score"])


def load_predictions(
    results: Sequence[CellResult],
) -> tuple[np.ndarray, np.ndarray, dict[Cell, CellPredictions]]:
    """(users, labels, scores per cell), checking that every file has the same rows."""
    users = labels = None
    first = ""
    scores: dict[Cell, list[tuple[int, np.ndarray]]] = {}
    for result in results:
        if not result.predictions:
            raise UnpairedPredictions(
                f"{result.cell} seed {result.seed}: no predictions file to compare"
            )
        frame = _read(result.predictions)
        name = f"{result.predictions} ({result.cell}, seed {result.seed})"
        u, y = frame["user_id"].to_numpy(), frame["label"].to_numpy()
        if users is None:
            users, labels, first = u, y, name
        else:
            try:
                require_same_rows(users, labels, u, y, first, name)
            except RowsMismatch as exc:
                raise UnpairedPredictions(
                    f"{exc}; the cells of an ablation must share one data split (data_seed)"
                ) from None
        key = (result.model, result.regularizer)
        scores.setdefault(key, []).append((result.seed, frame["score"].to_numpy()))
    if users is None or labels is None:
        raise UnpairedPredictions("no cell results to compare")
    cells = {
        key: CellPredictions(
            seeds=tuple(seed for seed, _ in runs), scores=np.stack([s for _, s in runs])
        )
        for key, runs in scores.items()
    }
    return users, labels, cells


def _columns(prefix: str, result: PairedDifference | None) -> dict[str, float | None]:
    values = (None, None, None) if result is None else (result.diff, result.low, result.high)
    return dict(zip((f"{prefix}_diff", f"{prefix}_low", f"{prefix}_high"), values, strict=True))


def paired_comparisons(
    results: Sequence[CellResult],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> list[dict[str, Any]]:
    """One row per cell: ΔGAUC vs BaseModel and vs its reference cell, with 95% intervals.

    Columns ``vs_base_diff/_low/_high``, ``reference`` (a cell label or None) and
    ``vs_ref_diff/_low/_high``, plus ``paired_users`` (users with both classes)
    and ``resamples``/``bootstrap_seed``. Every comparison uses the same seed, so
    all rows are judged on the same resampled user sets.
    """
    users, labels, cells = load_predictions(results)

    def compare(cell: Cell, other: Cell) -> PairedDifference | None:
        if other not in cells or other == cell:
            return None
        return paired_gauc_difference(
            users,
            labels,
            cells[cell].scores,
            cells[other].scores,
            resamples=resamples,
            seed=seed,
            confidence=DEFAULT_CONFIDENCE,
        )

    rows = []
    for cell in cells:
        reference = reference_cell(*cell)
        vs_base = compare(cell, BASELINE)
        vs_ref = compare(cell, reference) if reference is not None else None
        n_users = next((r.n_users for r in (vs_base, vs_ref) if r is not None), None)
        rows.append(
            {
                "cell": cell_label(cell),
                "model": cell[0],
                "regularizer": cell[1],
                **_columns("vs_base", vs_base),
                "reference": cell_label(reference) if vs_ref is not None else None,
                **_columns("vs_ref", vs_ref),
                "paired_users": n_users,
                "resamples": resamples,
                "bootstrap_seed": seed,
            }
        )
    return rows


@task(name="paired-significance", cache_policy=NO_CACHE, persist_result=False)
def paired_significance(
    results: list[CellResult],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> list[dict[str, Any]]:
    """:func:`paired_comparisons` as a pipeline step (it reads every cell's predictions)."""
    rows = paired_comparisons(results, resamples, seed)
    users = next((r["paired_users"] for r in rows if r["paired_users"] is not None), 0)
    get_run_logger().info(
        "paired ΔGAUC of %d cells over %s test users, %d bootstrap resamples",
        len(rows),
        users,
        resamples,
    )
    return rows
