"""The replay's timeline: what the schedule would have done, one arrival at a time.

One row per retrain of a replay (:mod:`flows.replay_flow`): the arrival held back
as the fresh slice, the GAUC on that slice of the champion the retrain faced and of
the new challenger, the paired interval of their difference, and the decision. The
plot has two panels sharing the arrivals axis: both GAUCs (promotions marked), and
the difference with its 95% interval against the promotion threshold, so a reader
sees why a challenger that scored higher was still not promoted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.plots import plt, save_figure


@dataclass(frozen=True)
class TimelineRow:
    """One retrain of a replay."""

    arrival: str
    run_id: str | None
    version: str | None
    kind: str
    promoted: bool
    skipped: bool
    challenger_gauc: float
    champion_gauc: float
    gauc_diff: float
    gauc_diff_low: float
    gauc_diff_high: float
    champion_version: str | None
    decision: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _float(values: Mapping[str, Any], key: str) -> float:
    value = values.get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def timeline_row(arrival: str, summary: Mapping[str, Any]) -> TimelineRow:
    """The row of one din-train summary (a skipped run keeps its arrival, with no scores)."""
    registry = summary.get("registry") or {}
    # a first champion has no head to head: its own score on the slice is the challenger's
    h2h = registry.get("h2h") or registry.get("challenger") or {}
    return TimelineRow(
        arrival=arrival,
        run_id=summary.get("run_id"),
        version=registry.get("version"),
        kind=str(registry.get("kind", "skipped" if summary.get("skipped") else "")),
        promoted=bool(registry.get("promoted", False)),
        skipped=bool(summary.get("skipped", False)),
        challenger_gauc=_float(h2h, "challenger_gauc"),
        champion_gauc=_float(h2h, "champion_gauc"),
        gauc_diff=_float(h2h, "gauc_diff"),
        gauc_diff_low=_float(h2h, "gauc_diff_low"),
        gauc_diff_high=_float(h2h, "gauc_diff_high"),
        champion_version=registry.get("champion_version"),
        decision=str(registry.get("decision") or summary.get("reason") or ""),
    )


def timeline_plot(
    rows: Sequence[TimelineRow], path: Path, title: str, min_gain: float = 0.0
) -> Path:
    """Champion's and challenger's GAUC per fresh slice, promotions marked; the difference."""
    labels = [row.arrival for row in rows]
    x = np.arange(len(rows))
    challenger = np.array([row.challenger_gauc for row in rows])
    champion = np.array([row.champion_gauc for row in rows])
    diff = np.array([row.gauc_diff for row in rows])
    low = np.array([row.gauc_diff_low for row in rows])
    high = np.array([row.gauc_diff_high for row in rows])
    promoted = np.array([row.promoted for row in rows])

    width = max(6.0, 0.45 * len(rows) + 2.5)
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(width, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.plot(x, champion, "o-", color="tab:orange", label="champion (before the decision)")
    top.plot(x, challenger, "s-", color="tab:blue", label="challenger")
    if promoted.any():
        top.plot(
            x[promoted], challenger[promoted], "*", color="tab:green", markersize=16,
            label="promoted", zorder=3,
        )  # fmt: skip
    top.set_ylabel("GAUC on the new slice")
    top.set_title(title)
    top.legend(loc="best", fontsize=8)
    top.grid(alpha=0.3)

    finite = np.isfinite(diff)
    if finite.any():
        errors = np.vstack([diff - low, high - diff])[:, finite]
        bottom.errorbar(
            x[finite], diff[finite], yerr=np.nan_to_num(errors), fmt="o", color="tab:blue",
            capsize=3, label="challenger - champion, 95% interval",
        )  # fmt: skip
    bottom.axhline(min_gain, color="tab:red", linestyle="--", linewidth=1, label="min gain")
    bottom.set_ylabel("GAUC difference")
    bottom.set_xlabel("arrival held back (the fresh slice)")
    bottom.legend(loc="best", fontsize=8)
    bottom.grid(alpha=0.3)
    bottom.set_xticks(x)
    bottom.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
