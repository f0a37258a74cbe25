"""Figures logged with runs: ROC, calibration, DIN attention weights, ablation bar chart.

matplotlib runs headless (Agg) because flows execute in servers and workers
without a display. Each function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from din_model.io.atomic import atomic_output_file  # noqa: E402

if TYPE_CHECKING:
    from din_model.pipeline.attention_examples import AttentionExample


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    with atomic_output_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def roc_plot(labels: np.ndarray, scores: np.ndarray, path: Path, title: str = "") -> Path:
    """ROC curve of the test predictions with the AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    auc = roc_auc_score(labels, scores)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, lw=1.5, label=f"AUC = {auc:.4f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC")
    ax.legend(loc="lower right")
    return _save(fig, path)


def calibration_plot(
    labels: np.ndarray, scores: np.ndarray, path: Path, title: str = "", bins: int = 10
) -> Path:
    """Reliability diagram: observed click rate against mean predicted score per quantile bin."""
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(labels, scores, n_bins=bins, strategy="quantile")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    ax.plot(predicted, observed, marker="o", lw=1.5, label="model")
    ax.set(
        xlabel="mean predicted score",
        ylabel="observed positive rate",
        title=title or "calibration",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="upper left")
    return _save(fig, path)


def comparison_bar_chart(
    labels: Sequence[str],
    means: Sequence[float],
    spreads: Sequence[float],
    path: Path,
    metric: str = "test GAUC",
) -> Path:
    """One bar per grid cell (mean over seeds) with the spread as an error bar."""
    means_arr = np.asarray(means, dtype=float)
    spreads_arr = np.nan_to_num(np.asarray(spreads, dtype=float))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(labels) + 1.5), 4.0))
    positions = np.arange(len(labels))
    ax.bar(positions, means_arr, yerr=spreads_arr, capsize=4, color="tab:blue", alpha=0.8)
    finite = means_arr[np.isfinite(means_arr)]
    if finite.size:
        low = max(0.0, float(finite.min()) - 0.05)
        high = min(1.0, float(finite.max()) + 0.03)
        ax.set_ylim(low, max(high, low + 0.01))
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    ax.set(ylabel=metric, title=f"{metric} per model / regulariser (mean over seeds)")
    return _save(fig, path)


def attention_plot(examples: Sequence[AttentionExample], path: Path, title: str = "") -> Path:
    """The paper's Fig. 5 view: DIN's weight of each past behaviour, one panel per sample.

    Bars run oldest to newest; a bar is orange when the behaviour shares the candidate's
    value of ``hist_cate_id`` (or of the first behaviour feature when there is no
    category sequence), so a model that attends to related behaviours shows tall orange
    bars.
    """
    if not examples:
        raise ValueError("attention_plot needs at least one example")
    fig, axes = plt.subplots(
        len(examples), 1, figsize=(8.0, 2.2 * len(examples) + 0.6), squeeze=False
    )
    for ax, example in zip(axes[:, 0], examples, strict=True):
        feature = (
            "hist_cate_id" if "hist_cate_id" in example.history else next(iter(example.history))
        )
        related = np.asarray(example.same_as_candidate(feature))
        positions = np.arange(len(example.weights))
        colors = np.where(related, "tab:orange", "tab:blue")
        ax.bar(positions, example.weights, color=colors, width=0.8)
        ax.axhline(0.0, color="black", lw=0.6)  # weights are unnormalised and may be < 0
        target = example.targets[feature]
        ax.set_title(
            f"user {example.user_id}: clicked candidate with {target} "
            f"{example.candidate[target]}, score {example.score:.3f}",
            fontsize=9,
        )
        ax.set_ylabel("weight")
        ax.set_xlim(-0.6, max(len(positions), 1) - 0.4)
    axes[-1, 0].set_xlabel(
        f"behaviour, oldest to newest (orange: same {feature.removeprefix('hist_')} "
        "as the candidate)"
    )
    fig.suptitle(title or "DIN activation weights of the user's behaviours", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
