"""Data-parallel training (torchrun + DDP, gloo on the CPU) against the single-process run.

The fast tests check the sharding arithmetic without a process group. The
slow ones start real ``torchrun`` processes:

* MovieLens 100K (real data, max_len 20), DIN with Adam, 1 epoch: 2 processes
  give the 1-process metrics within ``TOLERANCE``. Measured over 4 seeds, the
  largest difference of valid/test AUC, GAUC and LogLoss was 1.2e-4 (1.9e-6 to
  1.2e-4); the mean absolute score difference at most 9e-4. Each rank reduces
  half the batch, so gradients differ in the last float32 bits, and Adam's
  per-coordinate normalisation lets that drift grow over 132 steps. 1e-3 (and
  5e-3 for the mean score difference) leaves an 8x (5x) margin and still fails
  a run that does not follow the single-process optimisation: another seed
  moves the metrics by 4.9e-3 and scores by 0.04 on average, and half the
  batch (254: steps on one rank's part only) by 3.4e-3 and 0.03. The tighter
  SGD test below catches subtle weighting errors.
* Hand-written data, DIN + MBA with plain SGD (no Adam amplification): the
  2-process run follows the 1-process one score by score to 1e-7 (measured
  1.4e-9: float32 rounding), including the uneven last batch and the
  global-batch MBA penalty. The model is barely past its initial state there
  (scores spread by ~1e-4), so AUC can flip one near-tied pair (measured
  3.9e-6 = half a pair of 360 x 360): metrics are compared to 1e-5. And a
  2-process run interrupted after epoch 1 resumes to exactly the
  uninterrupted run's metrics and predictions.
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

from din_model.data.prepare import prepare_dataset
from din_model.errors import ConfigError
from din_model.layers.packing import PACKED_ROWS_KEY
from din_model.training import train_and_evaluate
from din_model.training.ddp_trainer import combine_epoch_stats, rank_epoch_seed
from din_model.training.distributed import (
    is_distributed,
    is_main_process,
    process_group,
    shard_bounds,
)
from din_model.training.sharding import GradientWeights, ShardedBatches, local_epoch
from din_model.training.tensors import SplitTensors

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
TOLERANCE = 1e-3
MEAN_SCORE_TOLERANCE = 5e-3
SGD_SCORE_TOLERANCE = 1e-7
SGD_METRIC_TOLERANCE = 1e-5


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
    single = train_and_evaluate(movielens_20, tmp_path / "one", "din", None, SMALL_DIN).metrics

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
    assert _max_difference(double, single) < TOLERANCE, (double, single)
    one = pl.read_parquet(tmp_path / "one" / "predictions.parquet")
    two = pl.read_parquet(out / "predictions.parquet")
    assert two.select("user_id", "label").equals(one.select("user_id", "label"))
    assert float((two["score"] - one["score"]).abs().mean()) < MEAN_SCORE_TOLERANCE
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints",
        "config.yaml",
        "metrics.json",
        "predictions.parquet",
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
    single = train_and_evaluate(prepared_dir, tmp_path / "one", "din", "mba", config).metrics
    worker = REPO / "tests" / "training" / "_ddp_worker.py"
    _torchrun([str(worker), str(prepared_dir), str(tmp_path), json.dumps(config)], cwd=tmp_path)
    summary = json.loads((tmp_path / "summary.json").read_text())
    reference, resumed = summary["reference"], summary["resumed"]

    one = pl.read_parquet(tmp_path / "one" / "predictions.parquet")
    two = pl.read_parquet(tmp_path / "reference" / "predictions.parquet")
    assert float((two["score"] - one["score"]).abs().max()) < SGD_SCORE_TOLERANCE
    assert _max_difference(reference, single) < SGD_METRIC_TOLERANCE, (reference, single)
    for ours, theirs in zip(reference["history"], single["history"], strict=True):
        assert ours["train_penalty"] == pytest.approx(theirs["train_penalty"], rel=1e-6)
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-6)

    assert summary["resumed_from_epoch"] == 1
    assert _comparable(resumed) == _comparable(reference)
    assert pl.read_parquet(tmp_path / "resumed" / "predictions.parquet").equals(
        pl.read_parquet(tmp_path / "reference" / "predictions.parquet")
    )
    assert np.isfinite(two["score"].to_numpy()).all() and two["score"].std() > 0
