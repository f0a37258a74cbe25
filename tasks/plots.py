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


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as PNG atomically (temporary file, then rename) and close it."""
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
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def comparison_bar_chart(
    labels: Sequence[str],
    means: Sequence[float],
    spreads: Sequence[float],
    path: Path,
    metric: str = "test GAUC",
    marked: Sequence[bool] | None = None,
) -> Path:
    """One bar per grid cell (mean over seeds), the spread over seeds as an error bar.

    A NaN spread (one seed) draws no error bar. ``marked`` puts a ``*`` over the
    bars whose paired difference from BaseModel has an interval that excludes 0.
    """
    means_arr = np.asarray(means, dtype=float)
    spreads_arr = np.asarray(spreads, dtype=float)
    has_spread = bool(np.isfinite(spreads_arr).any())
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(labels) + 1.5), 4.0))
    positions = np.arange(len(labels))
    errors = np.nan_to_num(spreads_arr) if has_spread else None
    ax.bar(positions, means_arr, yerr=errors, capsize=4, color="tab:blue", alpha=0.8)
    finite = means_arr[np.isfinite(means_arr)]
    if finite.size:
        low = max(0.0, float(finite.min()) - 0.05)
        high = min(1.0, float(finite.max()) + 0.03)
        ax.set_ylim(low, max(high, low + 0.01))
    marks = list(marked) if marked is not None else [False] * len(labels)
    for position, mean, spread, mark in zip(
        positions, means_arr, np.nan_to_num(spreads_arr), marks, strict=True
    ):
        if mark and np.isfinite(mean):
            ax.annotate("*", (position, mean + spread), ha="center", va="bottom", fontsize=14)
    ax.set_xticks(positions, labels, rotation=30, ha="right")
    title = f"{metric} per model / regulariser"
    title += " (mean ± std over seeds)" if has_spread else " (one seed)"
    if marked is not None and any(marked):
        title += "\n* paired 95% interval vs BaseModel excludes 0"
    ax.set(ylabel=metric, title=title)
    return save_figure(fig, path)


def attention_plot(
    examples: Sequence[AttentionExample],
    path: Path,
    title: str = "",
    names: dict[int, str] | None = None,
    users: dict[int, str] | None = None,
) -> Path:
    """:func:`attention_figure` written to ``path`` (PNG)."""
    return save_figure(attention_figure(examples, title, names, users), path)


def attention_figure(
    examples: Sequence[AttentionExample],
    title: str = "",
    names: dict[int, str] | None = None,
    users: dict[int, str] | None = None,
) -> plt.Figure:
    """The paper's Fig. 5 view: DIN's weight of each past behaviour, one panel per sample.

    Bars run oldest to newest; a bar is orange when the behaviour shares the candidate's
    value of ``hist_cate_id`` (or of the first behaviour feature when there is no
    category sequence), so a model that attends to related behaviours shows tall orange
    bars. Every panel has the same y-scale, so the weights of different users compare,
    and the caption says that they are not normalised (no softmax in the paper's DIN: a
    panel's sum is the intensity of the user's interest in the candidate, not 1).
    ``names`` maps the related feature's ids to the owner's values (category names),
    ``users`` the user keys to the owner's user ids.
    """
    if not examples:
        raise ValueError("attention_plot needs at least one example")
    height = 2.2 * len(examples) + 1.4
    fig, axes = plt.subplots(len(examples), 1, figsize=(8.0, height), squeeze=False, sharey=True)
    names, users = names or {}, users or {}
    feature = ""
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
        value = example.candidate[target]
        label = f"'{names[value]}'" if value in names else f"{target} {value}"
        kinds = len(set(example.history[feature]))
        who = f"user {users[example.user_id]}" if example.user_id in users else "user key"
        ax.set_title(
            f"{who} ({example.user_id}): clicked a candidate of {label}, "
            f"score {example.score:.3f}; "
            f"{len(positions)} behaviours of {kinds} {feature.removeprefix('hist_')} values, "
            f"weights sum to {sum(example.weights):.3g}",
            fontsize=8.5,
        )
        ax.set_ylabel("weight")
        ax.set_xlim(-0.6, max(len(positions), 1) - 0.4)
    low = min(0.0, *(min(e.weights, default=0.0) for e in examples))
    high = max(0.0, *(max(e.weights, default=0.0) for e in examples))
    pad = 0.05 * (high - low) or 0.05
    axes[0, 0].set_ylim(low - (pad if low < 0 else 0.0), high + pad)  # shared by all panels
    axes[-1, 0].set_xlabel(
        f"behaviour, oldest to newest (orange: same {feature.removeprefix('hist_')} "
        "as the candidate)"
    )
    fig.suptitle(title or "DIN activation weights of the user's behaviours", fontsize=11)
    fig.tight_layout(rect=(0, 0.6 / height, 1, 1))  # 0.6 inch for the 3-line caption
    caption = _attention_caption(any(e.softmax for e in examples))
    fig.text(0.01, 0.005, caption, fontsize=8, ha="left", va="bottom")
    return fig


def _attention_caption(softmax: bool) -> str:
    """The figure's caption, wrapped to the figure's width (8 inches at font size 8)."""
    import textwrap

    if softmax:
        text = (
            "These weights went through a softmax (model.attention_softmax: true): each panel "
            "sums to 1, unlike the paper's DIN, which leaves them unnormalised. "
            "All panels share one y-scale."
        )
    else:
        text = (
            "DIN's activation weights are not normalised (no softmax, as in the paper): a "
            "panel's weights need not sum to 1, and their sum keeps the intensity of the user's "
            "interest in the candidate (Zhou et al., KDD 2018, Sec. 4.3). All panels share one "
            "y-scale, so intensities compare across users."
        )
    return textwrap.fill(text, width=118)
