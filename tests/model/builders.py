"""Feature maps and batches for the model tests, built in code (no data files).

The map mirrors a prepared Amazon/MovieLens set: item and category tables shared by
the candidate and the behaviour sequences, one profile and one context feature.
Batches have random history lengths, always including an empty and a full row.
"""

from __future__ import annotations

import torch
from torch import Tensor

from din_model.data.specs.feature_map import FeatureMap, FeatureSpec, TableSpec

ITEMS = 60
CATES = 9
GENDERS = 4
HOURS = 26


def toy_feature_map(*, with_sequences: bool = True, max_len: int = 12) -> FeatureMap:
    features = [FeatureSpec("gender", "user_profile", "sparse", "gender")]
    if with_sequences:
        features += [
            FeatureSpec("hist_item_id", "behaviour", "sequence", "item_id", target="item_id"),
            FeatureSpec("hist_cate_id", "behaviour", "sequence", "cate_id", target="cate_id"),
        ]
    features += [
        FeatureSpec("item_id", "ad", "sparse", "item_id"),
        FeatureSpec("cate_id", "ad", "sparse", "cate_id"),
        FeatureSpec("hour", "context", "sparse", "hour"),
    ]
    feature_map = FeatureMap(
        dataset="toy",
        protocol="test",
        max_len=max_len,
        tables={
            "item_id": TableSpec("item_id", ITEMS),
            "cate_id": TableSpec("cate_id", CATES),
            "gender": TableSpec("gender", GENDERS),
            "hour": TableSpec("hour", HOURS),
        },
        features=features,
    )
    feature_map.check()
    return feature_map


def random_lengths(batch_size: int, length: int, generator: torch.Generator) -> Tensor:
    """Random history lengths in [0, length], with row 0 empty and row 1 full."""
    lengths = torch.randint(0, length + 1, (batch_size,), generator=generator)
    lengths[0] = 0
    lengths[1] = length
    return lengths


def random_batch(batch_size: int = 16, length: int = 12, seed: int = 0) -> dict[str, Tensor]:
    """Ids >= 1 (OOV included) at valid positions, 0 at padding, aligned sequences."""
    g = torch.Generator().manual_seed(seed)
    lengths = random_lengths(batch_size, length, g)
    valid = torch.arange(length).unsqueeze(0) < lengths.unsqueeze(1)
    items = torch.randint(1, ITEMS, (batch_size, length), generator=g)
    cates = torch.randint(1, CATES, (batch_size, length), generator=g)
    return {
        "gender": torch.randint(1, GENDERS, (batch_size,), generator=g),
        "item_id": torch.randint(1, ITEMS, (batch_size,), generator=g),
        "cate_id": torch.randint(1, CATES, (batch_size,), generator=g),
        "hour": torch.randint(1, HOURS, (batch_size,), generator=g),
        "hist_item_id": items * valid,
        "hist_cate_id": cates * valid,
    }


def pad_more(batch: dict[str, Tensor], extra: int) -> dict[str, Tensor]:
    """The same batch with ``extra`` more padded (0) positions appended to every sequence."""
    wider = dict(batch)
    for name, ids in batch.items():
        if ids.dim() == 2:
            wider[name] = torch.cat([ids, ids.new_zeros(ids.shape[0], extra)], dim=1)
    return wider


# Small widths keep the tests fast; a larger init std keeps gradients well above zero.
SMALL = {"embedding_dim": 8, "embedding_init_std": 0.1, "mlp_hidden": [16, 8]}
SMALL_DIN = {**SMALL, "attention_hidden": [12, 6]}


def small_config(model: str, **overrides: object) -> dict[str, object]:
    if model == "lr":
        return dict(overrides)
    base = SMALL_DIN if model.startswith("din") else SMALL
    return {**base, **overrides}
