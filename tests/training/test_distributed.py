"""Data-parallel training (torchrun + DDP, gloo on the CPU) against the single-process run.

The fast tests check the sharding arithmetic without a process group. The
slow ones start real ``torchrun`` processes. No tolerance below is a figure
one CPU printed: a CPU with other kernels (AVX2 or AVX-512, Intel or AMD)
rounds differently, so every bound is argued from float32 rounding, from the
scores themselves, or from a yardstick measured in the same test run.

* Hand-written data, DIN + MBA with plain SGD: the 2-process run follows the
  1-process one score by score (bound ``SGD_SCORE_TOLERANCE``, argued where it
  is defined). The metrics are then bounded by what those score differences
  *can* change (:func:`metric_change_bounds`): AUC and GAUC only through pairs
  whose scores lie within twice the largest score difference (near ties:
  the model is barely past its initial state there), LogLoss through the
  derivative of the log. And a 2-process run interrupted after epoch 1
  resumes to exactly the uninterrupted run's metrics and predictions (same
  processes, same kernels: exact by construction).
* MovieLens 100K (real data, max_len 20), DIN with Adam, 1 epoch: Adam's
  per-coordinate normalisation amplifies the last-bit differences of the
  split gradient sums over 132 steps, so no float bound is useful there.
  The yardstick is a different run: the same model trained with another seed,
  in the same test on the same CPU. A DDP run that follows the single-process
  optimisation stays far closer to it than that (a quarter of the distance),
  while one that does not (steps on one rank's part only, a missing
  all-reduce) is a different run and lands as far away as another seed does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from din_model.distributed.group import (
    is_distributed,
    is_main_process,
    process_group,
    shard_bounds,
)
from din_model.distributed.sharding import GradientWeights, ShardedBatches, local_epoch
from din_model.distributed.trainer import combine_epoch_stats, rank_epoch_seed
from din_model.errors import ConfigError
from din_model.layers.packing import PACKED_ROWS_KEY
from din_model.pipeline import fit_and_score
from din_model.pipeline.prepare import prepare_dataset
from din_model.tensors.split import SplitTensors

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
# A DDP run must be this much closer to the single-process run than another seed's run is.
YARDSTICK_FRACTION = 0.25
# The SGD runs perform the same float32 operations except the association of each batch's
# gradient sum (two halves, then the all-reduce). Re-associating a sum of n float32 terms
# moves it by at most (n - 1) * u * sum|terms| (u = 2**-24; Higham, Accuracy and Stability of
# Numerical Algorithms, 4.2): with n = 97 that is 5.7e-6 relative to the gradient. Over the
# 46 steps at learning rate 0.5 the parameters then drift by at most 46 * 0.5 * 5.7e-6 = 1.3e-4
# times the gradient's size, which stays below 1e-2 here (a barely trained model: scores spread
# by ~1e-4), so by 1.3e-6; a score (sigmoid' <= 1/4) moves by a quarter of the logit's change.
# 1e-6 covers that; a run that does not follow the optimisation moves scores by the size of
# the learning signal itself (their spread, ~1e-4).
SGD_SCORE_TOLERANCE = 1e-6
# Per batch the loss is a float32 mean of <= 97 terms of about 0.7: re-associated it moves by
# at most 96 * 2**-24 * 0.7 = 4.0e-6 (the same bound as above); the score drift adds at most
# SGD_SCORE_TOLERANCE / min(s, 1 - s) ~ 2e-6. Epoch means of such batch losses: 1e-5.
SGD_LOSS_TOLERANCE = 1e-5


# -- sharding arithmetic (no processes) -----------------------------------------------------
def test_shard_bounds_split_like_tensor_split() -> None:
    for n, parts in ((10, 3), (2, 2), (1, 2), (0, 2), (507, 2)):
        sizes = [stop - start for start, stop in shard_bounds(n, parts)]
        assert sizes == [len(t) for t in torch.arange(n).tensor_split(parts)]
        assert shard_bounds(n, parts)[-1][1] == n


@pytest.mark.parametrize(("n", "batch", "world"), [(100, 10, 2), (103, 10, 2), (103, 7, 3)])
def test_ranks_split_every_global_batch_in_order(n: int, batch: int, world: int) -> None:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    shares = [local_epoch(order, batch, rank, world) for rank in range(world)]
    positions = [0] * world
    n_batches = -(-n // batch)
    for k in range(n_batches):
        parts = []
        for rank, share in enumerate(shares):
            size = share.local_sizes[k]
            parts.append(share.rows[positions[rank] : positions[rank] + size])
            positions[rank] += size
        # rank parts concatenated are exactly the single-process batch k
        assert torch.equal(torch.cat(parts), order[k * batch : (k + 1) * batch])
        assert sum(share.weights()[k] for share in shares) == pytest.approx(1.0)
    assert sum(share.samples for share in shares) == n


def _split(n: int) -> SplitTensors:
    lengths = torch.arange(n, dtype=torch.int32) % 4
    history = (torch.arange(4).expand(n, 4) < lengths[:, None]).to(torch.int32) * 5
    return SplitTensors(
        path=Path("memory"),
        sparse={"item_id": torch.arange(n, dtype=torch.int32) + 2},
        sequences={"hist_item_id": history},
        lengths=lengths,
        label=(torch.arange(n) % 2).float(),
        user=torch.arange(n, dtype=torch.int64),
    )


def test_an_empty_part_of_the_last_batch_trains_one_row_with_weight_zero() -> None:
    split = _split(11)  # batches of 5: 5, 5, 1 -> rank 1 has no row of the last batch
    weights_seen, rows_seen = [], []
    shards = ShardedBatches(rank=1, world=2, weights=GradientWeights())
    for batch in shards.iterate(
        split, 5, shuffle=False, seed=0, epoch=1, trim=True, device=torch.device("cpu")
    ):
        weights_seen.append(shards.weights.weight)
        rows_seen.append(batch["item_id"].tolist())
        assert batch["hist_item_id"].shape[1] >= 1
        assert len(shards.global_batch()["item_id"]) in (5, 1)
    assert weights_seen == [2 / 5, 2 / 5, 0.0]
    assert rows_seen == [[5, 6], [10, 11], [12]]  # ids are row + 2; the last is a stand-in
    assert shards.epoch is not None and shards.epoch.samples == 4


def test_packed_positions_count_the_valid_history_of_each_batch() -> None:
    split = _split(23)
    for rank in (0, 1):
        shards = ShardedBatches(rank=rank, world=2, packed_rows=True)
        batches = list(
            shards.iterate(
                split, 6, shuffle=True, seed=3, epoch=2, trim=True, device=torch.device("cpu")
            )
        )
        assert len(batches) == 4
        for batch in batches:
            valid = int((batch["hist_item_id"] != 0).sum())
            assert int(batch[PACKED_ROWS_KEY]) == valid
            longest = int((batch["hist_item_id"] != 0).sum(dim=1).max())
            assert batch["hist_item_id"].shape[1] == max(1, longest)  # trimmed per batch


def test_epoch_stats_combine_over_ranks() -> None:
    combined = combine_epoch_stats(
        [
            (300, {"train_loss": 0.5, "train_penalty": 0.0, "train_seconds": 2.0, "extra": 1}),
            (100, {"train_loss": 0.7, "train_penalty": 0.4, "train_seconds": 4.0, "extra": 2}),
        ]
    )
    assert combined["train_loss"] == pytest.approx(0.55)
    assert combined["train_penalty"] == pytest.approx(0.1)
    assert combined["train_seconds"] == 4.0 and combined["samples_per_s"] == pytest.approx(100)
    assert combined["extra"] == 1
    assert rank_epoch_seed(1, 2, 0) != rank_epoch_seed(1, 2, 1) != rank_epoch_seed(1, 3, 1)


def test_one_process_joins_no_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with process_group("cpu") as group:
        assert group is None and not is_distributed() and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc-per-node 1
    with process_group("cpu") as group:
        assert group is None


def test_a_half_set_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with (
        pytest.raises(ConfigError, match="MASTER_ADDR is not set: start .* with torchrun"),
        process_group("cpu"),
    ):
        pass


# -- real processes ------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*TORCHRUN, *args], env=_env(), cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    return done


def _max_difference(a: dict, b: dict) -> float:
    return max(
        abs(a[s][k] - b[s][k]) for s in ("valid", "test") for k in ("auc", "gauc", "logloss")
    )


def _pairs_within(positives: np.ndarray, negatives: np.ndarray, width: float) -> int:
    """How many (positive, negative) score pairs lie within ``width`` of each other."""
    negatives = np.sort(negatives)
    upper = np.searchsorted(negatives, positives + width, side="right")
    lower = np.searchsorted(negatives, positives - width, side="left")
    return int((upper - lower).sum())


def metric_change_bounds(predictions: pl.DataFrame, delta: float) -> dict[str, float]:
    """How far AUC, GAUC and LogLoss can move when every score moves by at most ``delta``.

    A (positive, negative) pair changes its AUC term (0, 1/2 or 1) only if its order can
    flip, i.e. when the two scores lie within ``2 * delta``; the AUC moves by at most the
    share of such pairs, GAUC by the impression-weighted mean of each user's share. The
    log loss of a row with score s moves by at most delta / (min(s, 1 - s) - delta).
    """
    labels = predictions["label"].to_numpy()
    scores = predictions["score"].to_numpy()
    users = predictions["user_id"].to_numpy()
    positive = labels == 1
    near = _pairs_within(scores[positive], scores[~positive], 2 * delta)
    auc_bound = near / (positive.sum() * (~positive).sum())
    weighted, impressions = 0.0, 0
    for user in np.unique(users):
        mine = users == user
        pos, neg = scores[mine & positive], scores[mine & ~positive]
        if len(pos) and len(neg):
            weighted += mine.sum() * _pairs_within(pos, neg, 2 * delta) / (len(pos) * len(neg))
            impressions += mine.sum()
    margin = np.minimum(scores, 1 - scores) - delta
    assert margin.min() > 0, "scores too close to 0 or 1 for a LogLoss bound"
    return {
        "auc": auc_bound,
        "gauc": weighted / impressions,
        "logloss": float(np.mean(delta / margin)),
    }


SMALL_DIN = {
    "model": {"embedding_dim": 8, "mlp_hidden": [32, 16], "attention_hidden": [16, 8]},
    "train": {
        "epochs": 1,
        # 66,516 rows = 131 batches of 507 + 99: ranks take 254/253 rows, and 50/49 at the end
        "batch_size": 507,
        "learning_rate": 0.003,
        "num_threads": 1,
        "progress": "log",
        "device": "cpu",
    },
}


@pytest.fixture(scope="module")
def movielens_20(movielens_100k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ml100k-ddp") / "prepared"
    prepare_dataset("movielens", movielens_100k, out, seed=42, max_len=20)
    return out


@pytest.mark.slow
def test_two_processes_match_one_on_movielens(movielens_20: Path, tmp_path: Path) -> None:
    config_file = tmp_path / "small.yaml"
    config_file.write_text(yaml.safe_dump(SMALL_DIN))
    single = fit_and_score(movielens_20, tmp_path / "one", "din", None, SMALL_DIN).metrics
    reseeded = {**SMALL_DIN, "train": {**SMALL_DIN["train"], "seed": 7}}
    other_seed = fit_and_score(movielens_20, tmp_path / "seed7", "din", None, reseeded)

    out = tmp_path / "two"
    done = _torchrun(
        ["-m", "din_model.cli", "train", "--data", str(movielens_20), "--model", "din"]
        + ["--config", str(config_file), "--out", str(out)],
        cwd=tmp_path,
    )
    assert done.stdout.count("best epoch") == 1  # only rank 0 prints
    assert "global batch 507 = 253 or 254 rows per rank" in done.stderr
    double = json.loads((out / "metrics.json").read_text())
    assert double["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert double["config_hash"] == single["config_hash"]
    for split in ("valid", "test"):
        assert double[split]["n"] == single[split]["n"]
        assert double[split]["gauc_users"] == single[split]["gauc_users"]
    metric_yardstick = _max_difference(other_seed.metrics, single)
    assert _max_difference(double, single) < YARDSTICK_FRACTION * metric_yardstick, (
        double,
        single,
        metric_yardstick,
    )
    one = pl.read_parquet(tmp_path / "one" / "predictions.parquet")
    two = pl.read_parquet(out / "predictions.parquet")
    seven = pl.read_parquet(tmp_path / "seed7" / "predictions.parquet")
    assert two.select("user_id", "label").equals(one.select("user_id", "label"))
    score_yardstick = float((seven["score"] - one["score"]).abs().mean())
    score_difference = float((two["score"] - one["score"]).abs().mean())
    assert score_difference < YARDSTICK_FRACTION * score_yardstick, (
        score_difference,
        score_yardstick,
    )
    assert sorted(p.name for p in out.iterdir()) == [
        ".din-output",  # marks the folder as din's own output
        "attention.json",  # the run layout of din_model/pipeline/layout.py, written by rank 0
        "checkpoints",
        "config.yaml",
        "item_map.parquet",  # Fig. 6's t-SNE of the item embeddings (DIN models), rank 0 too
        "metrics.json",
        "predictions.parquet",
        "serving",  # the raw-request tables of the prepared folder, for the served model
    ]


def _comparable(metrics: dict) -> dict:
    timing = {"samples_per_s", "train_seconds"}
    return {
        "valid": metrics["valid"],
        "test": metrics["test"],
        "history": [{k: v for k, v in r.items() if k not in timing} for r in metrics["history"]],
    }


@pytest.mark.slow
def test_sgd_follows_one_process_and_a_ddp_run_resumes(prepared_dir: Path, tmp_path: Path) -> None:
    config = {
        "model": {"embedding_dim": 8, "mlp_hidden": [16, 8]},
        "train": {
            "epochs": 2,
            "early_stopping_patience": 0,
            # 2,160 rows = 22 batches of 97 + 26: ranks take 49/48 rows, 13/13 at the end
            "batch_size": 97,
            "optimizer": "sgd",
            "learning_rate": 0.5,
            "num_threads": 1,
            "progress": "none",
            "device": "cpu",
        },
        "regularizer": {"mba": {"weight": 0.5}},
    }
    single = fit_and_score(prepared_dir, tmp_path / "one", "din", "mba", config).metrics
    worker = REPO / "tests" / "training" / "_ddp_worker.py"
    _torchrun([str(worker), str(prepared_dir), str(tmp_path), json.dumps(config)], cwd=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    reference, resumed = summary["reference"], summary["resumed"]

    one = pl.read_parquet(tmp_path / "one" / "predictions.parquet")
    two = pl.read_parquet(tmp_path / "reference" / "predictions.parquet")
    assert two.select("user_id", "label").equals(one.select("user_id", "label"))
    delta = float((two["score"] - one["score"]).abs().max())
    assert delta < SGD_SCORE_TOLERANCE
    # the metrics move by no more than those score differences can move them
    bounds = metric_change_bounds(one, delta)
    for name, bound in bounds.items():
        difference = abs(reference["test"][name] - single["test"][name])
        assert difference <= bound + 1e-12, (name, difference, bounds)  # 1e-12: float64 sums
    for key in ("n", "gauc_users"):
        assert reference["valid"][key] == single["valid"][key]
        assert reference["test"][key] == single["test"][key]
    assert [r["epoch"] for r in reference["history"]] == [r["epoch"] for r in single["history"]]
    for ours, theirs in zip(reference["history"], single["history"], strict=True):
        # Both runs sum ||w_j||^2 / n_j over the global batch's ids (GlobalBatchPenalty), so
        # only the parameter drift dw differs: by Cauchy-Schwarz the sum of squares moves by at
        # most 2 ||dw|| / ||w|| relative, with |dw| <= 1.3e-6 per entry (SGD_SCORE_TOLERANCE's
        # argument) against embeddings initialised at std 1e-4: 2.6e-2. A penalty over one
        # rank's ids only (half the rows) would be off by about half.
        assert ours["train_penalty"] == pytest.approx(theirs["train_penalty"], rel=3e-2)
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], abs=SGD_LOSS_TOLERANCE)

    assert summary["resumed_from_epoch"] == 1
    assert _comparable(resumed) == _comparable(reference)
    assert pl.read_parquet(tmp_path / "resumed" / "predictions.parquet").equals(
        pl.read_parquet(tmp_path / "reference" / "predictions.parquet")
    )
    assert np.isfinite(two["score"].to_numpy()).all() and two["score"].std() > 0
