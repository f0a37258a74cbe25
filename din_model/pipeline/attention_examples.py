"""The activation weights a trained DIN gives each past behaviour of chosen samples.

This is the data behind the paper's Fig. 5: for one candidate, how much each item of
the user's history counts. Reading it shows whether the model learned what the paper
claims, that behaviours related to the candidate (same category) get the high weights.
:func:`din_model.pipeline.fit_and_score` writes the examples of every run of a model
with an activation unit to ``attention.json``, with the model and test split it has
just scored; the plot is drawn from that file where the run is logged
(``tasks/plots.py``), so this module stays free of plotting and tracking code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.io.atomic import atomic_output_file
from din_model.serving.loading import load_trained_model
from din_model.tensors.batches import take
from din_model.tensors.split import SplitTensors, load_prepared_split


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


ATTENTION_SAMPLES = 3


def has_attention(model: nn.Module) -> bool:
    """Whether ``model`` pools behaviours with an activation unit (DIN and its variants)."""
    return hasattr(model, "attention_weights")


def attention_examples(
    checkpoint: str | Path,
    data_dir: str | Path,
    split: str = "test",
    count: int = ATTENTION_SAMPLES,
) -> list[AttentionExample]:
    """Score ``count`` samples of ``split`` (see :func:`pick_rows`) with a DIN checkpoint."""
    model, feature_map, config = load_trained_model(checkpoint)
    if not has_attention(model):
        raise ConfigError(
            f"{checkpoint}: attention weights exist for DIN models only, "
            f"not for '{type(model).__name__}'"
        )
    tensors = load_prepared_split(data_dir, split, feature_map, config["train"]["max_len"])
    return _examples(model, tensors, feature_map, torch.device("cpu"), count)


def examples_from_model(
    model: nn.Module,
    tensors: SplitTensors,
    feature_map: FeatureMap,
    device: torch.device,
    count: int = ATTENTION_SAMPLES,
) -> list[AttentionExample] | None:
    """The examples of a model already loaded on ``device``; None for a model without attention."""
    if not has_attention(model):
        return None
    return _examples(model, tensors, feature_map, device, count)


def _examples(
    model: nn.Module,
    tensors: SplitTensors,
    feature_map: FeatureMap,
    device: torch.device,
    count: int,
) -> list[AttentionExample]:
    rows = pick_rows(tensors, count)
    if not rows:
        return []
    batch = take(tensors, torch.tensor(rows))
    with torch.no_grad():
        on_device = {name: value.to(device) for name, value in batch.items()}
        weights = model.attention_weights(on_device).cpu()
        scores = torch.sigmoid(model(on_device).double()).cpu()
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


def write_attention_examples(path: Path, examples: list[AttentionExample]) -> None:
    """``attention.json``: the examples as a JSON list (atomically)."""
    with atomic_output_file(path) as tmp:
        tmp.write_text(json.dumps([asdict(e) for e in examples], indent=1))


def read_attention_examples(path: Path) -> list[AttentionExample]:
    """The examples of ``attention.json`` (JSON turns int keys to str: none are used here)."""
    return [AttentionExample(**entry) for entry in json.loads(Path(path).read_text())]
