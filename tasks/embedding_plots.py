"""The paper's Fig. 6 from a run's ``item_map.parquet``: item embeddings in two panels.

Left, the t-SNE of the goods embeddings with each item's category as colour and marker
(the most common categories of the map; the rest grey as "other"): a model that learned
item similarity puts items of a category together. Right, the same points coloured by
the predicted CTR of one test user with each item as the candidate, the user's own past
items circled: the paper's observation is that high CTRs gather around the history.

The numbers come from :mod:`din_model.pipeline.item_map` (written by ``fit_and_score``);
this module only draws (matplotlib Agg, as :mod:`tasks.plots`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from din_model.pipeline.item_map import ItemMap, read_item_map  # noqa: E402
from din_model.pipeline.layout import RunLayout  # noqa: E402
from tasks.plots import save_figure  # noqa: E402

TOP_CATEGORIES = 9  # tab10 has ten colours; the tenth (grey) is "other"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
LABEL_CHARS = 28


def _category_labels(frame: pl.DataFrame) -> list[str]:
    """A legend label per item: its category's name, else its id, else one common label."""
    if frame["cate_id"].null_count() == frame.height:
        return ["all items"] * frame.height
    labels = []
    for name, cate in zip(frame["category"].to_list(), frame["cate_id"].to_list(), strict=True):
        text = name if name is not None else f"category {cate}"
        labels.append(text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…")
    return labels


def _top_categories(labels: list[str], count: int) -> list[str]:
    """The ``count`` most common labels, most common first (ties by label, so it is stable)."""
    values, counts = np.unique(np.asarray(labels, dtype=object), return_counts=True)
    order = sorted(range(len(values)), key=lambda i: (-counts[i], str(values[i])))
    return [str(values[i]) for i in order[:count]]


def _category_panel(ax: plt.Axes, item_map: ItemMap) -> None:
    frame = item_map.frame
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    labels = np.asarray(_category_labels(frame), dtype=object)
    top = _top_categories(list(labels), TOP_CATEGORIES)
    other = ~np.isin(labels, top)
    if other.any():
        ax.scatter(x[other], y[other], s=8, c="0.75", lw=0, label=f"other ({int(other.sum())})")
    colours = plt.get_cmap("tab10").colors
    for index, label in enumerate(top):
        mask = labels == label
        ax.scatter(
            x[mask],
            y[mask],
            s=18,
            color=colours[index if index < 7 else index + 1],  # skip tab10's grey
            marker=MARKERS[index % len(MARKERS)],
            lw=0,
            alpha=0.9,
            label=f"{label} ({int(mask.sum())})",
        )
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.08), ncol=2, frameon=False)
    feature = f" ({item_map.category_feature})" if item_map.category_feature else ""
    ax.set_title(
        f"by category{feature}: the {len(top)} most common in the map, the rest grey",
        fontsize=9,
    )


def _ctr_panel(fig: plt.Figure, ax: plt.Axes, item_map: ItemMap) -> None:
    frame = item_map.frame
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    user = item_map.user
    if user is None or frame["ctr"].null_count() == frame.height:
        ax.scatter(x, y, s=8, c="0.75", lw=0)
        ax.set_title("no test user with a history to score", fontsize=9)
        return
    ctr = frame["ctr"].to_numpy()
    order = np.argsort(ctr, kind="stable")  # high CTRs drawn last, on top
    points = ax.scatter(x[order], y[order], s=14, c=ctr[order], cmap="viridis", lw=0)
    fig.colorbar(points, ax=ax, fraction=0.046, pad=0.02, label="predicted CTR")
    seen = frame["in_history"].to_numpy()
    if seen.any():
        ax.scatter(
            x[seen],
            y[seen],
            s=46,
            facecolors="none",
            edgecolors="red",
            lw=0.9,
            label=f"in the user's history ({int(seen.sum())})",
        )
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.08), frameon=False)
    who = f"user {user.user}" if user.user is not None else f"user key {user.user_id}"
    ax.set_title(
        f"predicted CTR of {who} (key {user.user_id}) for each item as the candidate;\n"
        f"history of {user.history_length} items in {user.history_categories} categories "
        f"(test row {user.test_row}); CTR {np.nanmin(ctr):.3f} to {np.nanmax(ctr):.3f}",
        fontsize=9,
    )


def item_embedding_plot(item_map: ItemMap, path: Path, title: str = "") -> Path:
    """:func:`item_embedding_figure` written to ``path`` (PNG)."""
    return save_figure(item_embedding_figure(item_map, title), path)


def item_embedding_figure(item_map: ItemMap, title: str = "") -> plt.Figure:
    """Two panels over the same t-SNE points: by category, and by one user's predicted CTR."""
    if item_map.frame.height == 0:
        raise ValueError("item_embedding_plot needs at least one item")
    fig, (left, right) = plt.subplots(1, 2, figsize=(13.0, 6.6))
    _category_panel(left, item_map)
    _ctr_panel(fig, right, item_map)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    n = item_map.frame.height
    fig.suptitle(
        title
        or f"DIN item embeddings: t-SNE of the {n} most frequent training items "
        f"({item_map.table} table)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


def run_item_embedding_plot(layout: RunLayout, path: Path) -> Path | None:
    """The figure of a run's ``item_map.parquet``; None when the run has none (no activation
    unit, ``train.item_map_items: 0``) or it is empty."""
    if not layout.item_map.is_file():
        return None
    item_map = read_item_map(layout.item_map)
    if item_map.frame.height == 0:
        return None
    return item_embedding_plot(item_map, path)
