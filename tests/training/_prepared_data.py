"""Small prepared directories written by hand, following the prepared-data contract.

They let the training tests run in seconds on data whose signal is known: a
sample is positive when its candidate's category occurs in the user's
history, so a model that looks at the history can learn it and an AUC near
0.5 means something is broken.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from din_model.data.specs.feature_map import FeatureMap, FeatureSpec, TableSpec

N_ITEMS = 60
N_CATES = 8


def _split_frame(rng: np.random.Generator, users: np.ndarray, per_user: int, max_len: int):
    item_cate = (np.arange(N_ITEMS + 2) % N_CATES) + 2  # id 0/1: padding/OOV
    rows = []
    for user in users:  # test-data generation only; training never loops over rows
        taste = rng.choice(np.arange(2, N_CATES + 2), size=2, replace=False)
        liked = np.flatnonzero(np.isin(item_cate, taste))
        liked = liked[liked >= 2]
        for _ in range(per_user):
            length = int(rng.integers(0, max_len + 1))
            hist = rng.choice(liked, size=length).astype(np.int32)
            label = int(rng.random() < 0.5)
            pool = liked if label else np.setdiff1d(np.arange(2, N_ITEMS + 2), liked)
            item = int(rng.choice(pool))
            rows.append(
                {
                    "user_id": int(user),
                    "item_id": item,
                    "cate_id": int(item_cate[item]),
                    "hist_item_id": hist.tolist(),
                    "hist_cate_id": item_cate[hist].astype(np.int32).tolist(),
                    "weekday": int(rng.integers(2, 9)),
                    "label": label,
                    "timestamp": int(rng.integers(1_500_000_000, 1_600_000_000)),
                }
            )
    return pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Int32,
            "item_id": pl.Int32,
            "cate_id": pl.Int32,
            "hist_item_id": pl.List(pl.Int32),
            "hist_cate_id": pl.List(pl.Int32),
            "weekday": pl.Int32,
            "label": pl.Int8,
            "timestamp": pl.Int64,
        },
    )


def feature_map(max_len: int, splits: dict[str, int] | None = None) -> FeatureMap:
    return FeatureMap(
        dataset="movielens",
        protocol="hand-written test fixture",
        max_len=max_len,
        tables={
            "item_id": TableSpec("item_id", N_ITEMS + 2),
            "cate_id": TableSpec("cate_id", N_CATES + 2),
            "weekday": TableSpec("weekday", 9),
        },
        features=[
            FeatureSpec("item_id", "ad", "sparse", "item_id"),
            FeatureSpec("cate_id", "ad", "sparse", "cate_id"),
            FeatureSpec("hist_item_id", "behaviour", "sequence", "item_id", target="item_id"),
            FeatureSpec("hist_cate_id", "behaviour", "sequence", "cate_id", target="cate_id"),
            FeatureSpec("weekday", "context", "sparse", "weekday"),
        ],
        splits=splits or {},
    )


def write_prepared(
    out: Path, *, users: int = 60, per_user: int = 20, max_len: int = 12, seed: int = 0
) -> Path:
    """A prepared directory with train/valid/test parquet and feature_map.json."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    ids = rng.permutation(np.arange(1, users + 1))
    cut1, cut2 = int(users * 0.6), int(users * 0.8)
    parts = {"train": ids[:cut1], "valid": ids[cut1:cut2], "test": ids[cut2:]}
    counts = {}
    for split, members in parts.items():
        frame = _split_frame(rng, members, per_user, max_len)
        frame.write_parquet(out / f"{split}.parquet")
        counts[split] = frame.height
    feature_map(max_len, counts).save(out / "feature_map.json")
    return out
