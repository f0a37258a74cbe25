"""The activation weights a trained DIN gives each past behaviour of chosen samples.

This is the data behind the paper's Fig. 5: for one candidate, how much each item of
the user's history counts. Reading it shows whether the model learned what the paper
claims, that behaviours related to the candidate (same category) get the high weights.
The plot itself is drawn where the run is logged (``tasks/plots.py``); this module only
scores, so it stays free of plotting and tracking code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from din_model.errors import ConfigError
from din_model.training.api import load_trained_model
from din_model.training.batches import take
from din_model.training.tensors import SplitTensors, load_prepared_split


@dataclass(frozen=True)
class AttentionExample:
    """One sample: its candidate, its history (encoded ids, oldest first) and the weights."""

    row: int
    user_id: int
    label: int
    score: float
    candidate: dict[str, int]  # ad feature -> id, for every sequence's target
    history: dict[str, list[int]]  # behaviour feature -> ids of the valid positions
    targets: dict[str, str]  # behaviour feature -> the ad feature it is compared with
    weights: list[float]  # one per valid position, oldest first

    def same_as_candidate(self, feature: str) -> list[bool]:
        """Per position: does behaviour ``feature`` equal the candidate's value?"""
        wanted = self.candidate[self.targets[feature]]
        return [value == wanted for value in self.history[feature]]


def pick_rows(split: SplitTensors, count: int) -> list[int]:
    """Positive samples with the longest histories, one per user (ties by row order).

    Deterministic, so two runs of the same model plot the same samples; one per user,
    so the panels show different people.
    """
    positive = split.label > 0.5
    lengths = torch.where(positive, split.lengths, torch.full_like(split.lengths, -1))
    order = torch.sort(-lengths.long(), stable=True).indices  # stable: row order on ties
    rows: list[int] = []
    users: set[int] = set()
    for row in order.tolist():
        if len(rows) == count or int(lengths[row]) <= 0:
            break
        user = int(split.user[row])
        if user not in users:
            users.add(user)
            rows.append(row)
    return rows


def attention_examples(
    checkpoint: str | Path, data_dir: str | Path, split: str = "test", count: int = 3
) -> list[AttentionExample]:
    """Score ``count`` samples of ``split`` (see :func:`pick_rows`) with a DIN checkpoint."""
    model, feature_map, config = load_trained_model(checkpoint)
    if not hasattr(model, "attention_weights"):
        raise ConfigError(
            f"{checkpoint}: attention weights exist for DIN models only, "
            f"not for '{type(model).__name__}'"
        )
    tensors = load_prepared_split(data_dir, split, feature_map, config["train"]["max_len"])
    rows = pick_rows(tensors, count)
    if not rows:
        return []
    batch = take(tensors, torch.tensor(rows))
    with torch.no_grad():
        weights = model.attention_weights(batch)
        scores = torch.sigmoid(model(batch).double())
    targets = {spec.name: str(spec.target) for spec in feature_map.sequence_features}
    examples = []
    for i, row in enumerate(rows):
        length = int(tensors.lengths[row])
        examples.append(
            AttentionExample(
                row=row,
                user_id=int(batch["user_id"][i]),
                label=int(batch["label"][i]),
                score=float(scores[i]),
                candidate={t: int(batch[t][i]) for t in set(targets.values())},
                history={f: batch[f][i, :length].tolist() for f in targets},
                targets=targets,
                weights=weights[i, :length].tolist(),
            )
        )
    return examples
