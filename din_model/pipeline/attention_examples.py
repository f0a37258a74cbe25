"""The activation weights a trained DIN gives each past behaviour of chosen samples.

This is the data behind the paper's Fig. 5: for one candidate, how much each item of
the user's history counts. Reading it shows whether the model learned what the paper
claims, that behaviours related to the candidate (same category) get the high weights.
:func:`din_model.pipeline.fit_and_score` writes the examples of every run of a model
with an activation unit to ``attention.json``, with the model and test split it has
just scored; the plot is drawn from that file where the run is logged
(``tasks/plots.py``), so this module stays free of plotting and tracking code.
The samples shown are test positives whose histories mix the candidate's category with
others (:func:`pick_rows`), so that a panel can show related and unrelated behaviours
side by side.
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
from din_model.layers.attention import AttentionPooling
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
    # whether the weights went through a softmax (model.attention_softmax); the paper's
    # DIN does not normalise them. Files written before this field read as False.
    softmax: bool = False

    def same_as_candidate(self, feature: str) -> list[bool]:
        """Per position: does behaviour ``feature`` equal the candidate's value?"""
        wanted = self.candidate[self.targets[feature]]
        return [value == wanted for value in self.history[feature]]


#: Histories longer than this rank as if they were this long in :func:`pick_rows`: among
#: many long histories (MovieLens: most test rows hold 100 events) the panel of the first
#: one that is long enough is shown, and it stays readable (at most ~50 bars).
DISPLAY_LENGTH = 50


def relation_feature(feature_map: FeatureMap) -> str | None:
    """The behaviour sequence that says whether a past behaviour is related to the candidate.

    The category sequence (the one compared with ``cate_id``) when there is one, as in the
    paper's Fig. 5; else the first behaviour sequence; None without sequences.
    """
    sequences = feature_map.sequence_features
    for spec in sequences:
        if spec.target == "cate_id":
            return spec.name
    return sequences[0].name if sequences else None


def _mix(
    split: SplitTensors, feature: str | None, target: str | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the tier and the balance of its history's categories (``feature`` values).

    Tier 0: the history holds the candidate's value (``target``) and another one; 1: two
    or more values, none the candidate's; 2: one value or no history. Balance (tier 0
    only): min(behaviours of the candidate's value, the others), at most half of
    :data:`DISPLAY_LENGTH`: a panel with many bars of each colour shows best whether the
    model weighs related behaviours higher.
    """
    n = len(split)
    none = torch.zeros(n, dtype=torch.long)
    if feature is None or feature not in split.sequences or split.sequences[feature].shape[1] == 0:
        return none + 2, none
    values = split.sequences[feature].long()
    valid = torch.arange(values.shape[1], device=values.device)[None, :] < split.lengths[:, None]
    low = torch.where(valid, values, torch.full_like(values, torch.iinfo(torch.long).max))
    high = torch.where(valid, values, torch.full_like(values, -1))
    mixes = high.amax(1) > low.amin(1)  # False for an empty history (-1 > max)
    tier = torch.where(mixes, 1, 2)
    if target is None or target not in split.sparse:
        return tier, none
    same = ((values == split.sparse[target].long()[:, None]) & valid).sum(1)
    other = valid.sum(1) - same
    tier = torch.where((same > 0) & (other > 0), 0, tier)
    balance = torch.clamp(torch.minimum(same, other), max=DISPLAY_LENGTH // 2)
    return tier, balance.long()


def pick_rows(
    split: SplitTensors,
    count: int,
    feature: str | None = None,
    target: str | None = None,
) -> list[int]:
    """Positive samples whose histories mix categories, longest first, one per user.

    ``feature`` is the behaviour sequence of categories (:func:`relation_feature`) and
    ``target`` the candidate's feature it is compared with. Rows rank by tier first:
    histories with behaviours of the candidate's category AND of another one (the
    contrast the paper's Fig. 5 shows), then histories with two or more categories, then
    the rest (a dataset with one category, or no ``feature``, falls back to the longest
    histories). Within the first tier the more balanced mix comes first (see
    :func:`_mix`; few categories, as MovieLens' genres, make most long histories mix,
    and this picks those with many behaviours of each kind); then longer histories
    (counted up to :data:`DISPLAY_LENGTH`), then row order. Deterministic, so two runs
    of the same model plot the same samples; one per user, so the panels show
    different people.
    """
    positive = (split.label > 0.5) & (split.lengths > 0)
    shown = torch.clamp(split.lengths.long(), max=DISPLAY_LENGTH)
    tier, balance = _mix(split, feature, target)
    # one integer key: tier, then more balanced, then longer; a stable sort keeps row
    # order on ties (balance <= DISPLAY_LENGTH // 2 and shown <= DISPLAY_LENGTH)
    step = DISPLAY_LENGTH + 1
    key = (tier * step + (DISPLAY_LENGTH // 2 - balance)) * step + (DISPLAY_LENGTH - shown)
    key = torch.where(positive, key, torch.full_like(key, torch.iinfo(torch.long).max))
    order = torch.sort(key, stable=True).indices
    rows: list[int] = []
    users: set[int] = set()
    for row in order.tolist():
        if len(rows) == count or not bool(positive[row]):
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
    feature = relation_feature(feature_map)
    target = feature_map.feature(feature).target if feature is not None else None
    rows = pick_rows(tensors, count, feature, target)
    if not rows:
        return []
    batch = take(tensors, torch.tensor(rows))
    with torch.no_grad():
        on_device = {name: value.to(device) for name, value in batch.items()}
        weights = model.attention_weights(on_device).cpu()
        scores = torch.sigmoid(model(on_device).double()).cpu()
    targets = {spec.name: str(spec.target) for spec in feature_map.sequence_features}
    softmax = _normalised(model)
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
                softmax=softmax,
            )
        )
    return examples


def _normalised(model: nn.Module) -> bool:
    """Whether the model's attention pooling applies a softmax (found through any wrapper)."""
    return any(isinstance(m, AttentionPooling) and m.softmax for m in model.modules())


def write_attention_examples(path: Path, examples: list[AttentionExample]) -> None:
    """``attention.json``: the examples as a JSON list (atomically)."""
    with atomic_output_file(path) as tmp:
        tmp.write_text(json.dumps([asdict(e) for e in examples], indent=1))


def read_attention_examples(path: Path) -> list[AttentionExample]:
    """The examples of ``attention.json`` (JSON turns int keys to str: none are used here)."""
    return [AttentionExample(**entry) for entry in json.loads(Path(path).read_text())]
