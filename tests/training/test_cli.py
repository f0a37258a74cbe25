"""``din train``: outputs, resumption after a real SIGKILL, and bad-input messages."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from din_model.cli._main import run
from din_model.training.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
QUICK = [
    "--set", "model.embedding_dim=8",
    "--set", "model.mlp_hidden=[16]",
    "--set", "train.learning_rate=0.01",
    "--set", "train.num_threads=1",
    "--set", "train.progress=log",
]  # fmt: skip


def din_train(*args: str) -> int:
    return run(["train", *args], ["din_model.cli"])


def test_din_train_writes_metrics_predictions_checkpoints_and_config(
    prepared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = din_train(
        "--data", str(prepared_dir), "--model", "din", "--reg", "mba",
        "--config", "paper", *QUICK, "--set", "train.epochs=2", "--out", str(out),
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "test" in printed and "GAUC" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "din" and metrics["regularizer"] == "mba"
    assert metrics["test"]["gauc_users"] > 0 and len(metrics["history"]) == 2
    assert (out / "checkpoints" / "best.pt").is_file()
    assert (out / "checkpoints" / "last.pt").is_file()
    config = (out / "config.yaml").read_text()
    assert "attention_activation: dice" in config  # the paper preset
    assert "embedding_dim: 8" in config  # --set beats the preset
    assert pl.read_parquet(out / "predictions.parquet").height == metrics["test"]["n"]


def _command(data: Path, out: Path) -> list[str]:
    return [
        sys.executable, "-m", "din_model.cli", "train", "--data", str(data), "--model", "din",
        "--reg", "dropout", *QUICK, "--set", "train.epochs=2", "--set", "train.batch_size=16",
        "--out", str(out),
    ]  # fmt: skip


# `din train ARGS`, whose process SIGKILLs itself when epoch 1 has ended (its last.pt written)
KILLED_AFTER_FIRST_EPOCH = """
import os, signal, sys
import din_model.pipeline.run as api

fit = api.fit

def fit_killed_after_first_epoch(*args, **kwargs):
    def die(record):
        if record["epoch"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    return fit(*args, **{**kwargs, "on_epoch_end": die})

api.fit = fit_killed_after_first_epoch
from din_model.cli._main import run
sys.exit(run(["train", *sys.argv[1:]], ["din_model.cli"]))
"""


def _comparable(metrics: dict) -> dict:
    drop = {"samples_per_s", "train_seconds"}
    history = [{k: v for k, v in r.items() if k not in drop} for r in metrics["history"]]
    return {
        "valid": metrics["valid"],
        "test": metrics["test"],
        "best_epoch": metrics["best_epoch"],
        "history": history,
    }


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_final_metrics(prepared_dir: Path, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    subprocess.run(_command(prepared_dir, reference), env=env, check=True, capture_output=True)

    last = resumed / "checkpoints" / "last.pt"
    # The real `din train` command, killed by a real SIGKILL at a fixed point (right after
    # epoch 1's checkpoint), not after a wall-clock race that a faster CPU could win.
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AFTER_FIRST_EPOCH, *_command(prepared_dir, resumed)[4:]],
        env=env,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    done = load_checkpoint(last)["training_state"]["epoch"]
    assert done == 1
    assert not (resumed / "metrics.json").exists()

    finished = subprocess.run(
        _command(prepared_dir, resumed), env=env, capture_output=True, text=True
    )
    assert finished.returncode == 0, finished.stderr
    assert f"epoch {done} done" in finished.stderr
    first = json.loads((reference / "metrics.json").read_text())
    second = json.loads((resumed / "metrics.json").read_text())
    assert _comparable(second) == _comparable(first)
    assert pl.read_parquet(resumed / "predictions.parquet").equals(
        pl.read_parquet(reference / "predictions.parquet")
    )


def _broken_copy(prepared_dir: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(prepared_dir, data)
    return data


def test_bad_input_stops_with_a_message_naming_the_problem(
    prepared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")

    def error_of(*args: str) -> str:
        assert din_train(*args, "--out", out) == 2
        return capsys.readouterr().err

    data = str(prepared_dir)
    missing = tmp_path / "nowhere"
    assert str(missing) in error_of("--data", str(missing), "--model", "din")
    assert "unknown model 'dien'" in error_of("--data", data, "--model", "dien")
    assert "unknown regularizer 'l1'" in error_of("--data", data, "--model", "din", "--reg", "l1")
    message = error_of("--data", data, "--model", "din", "--set", "train.epoch=3")
    assert "train.epoch" in message and "train.epochs" in message
    assert "no such config file or preset" in error_of(
        "--data", data, "--model", "din", "--config", "nope"
    )

    no_map = _broken_copy(prepared_dir, tmp_path / "a")
    (no_map / "feature_map.json").unlink()
    assert "feature_map.json" in error_of("--data", str(no_map), "--model", "din")

    no_train = _broken_copy(prepared_dir, tmp_path / "b")
    (no_train / "train.parquet").unlink()
    assert "train.parquet: expected" in error_of("--data", str(no_train), "--model", "din")

    mismatch = _broken_copy(prepared_dir, tmp_path / "c")
    frame = pl.read_parquet(mismatch / "valid.parquet").drop("hist_cate_id")
    frame.write_parquet(mismatch / "valid.parquet")
    message = error_of("--data", str(mismatch), "--model", "din", *QUICK)
    assert "valid.parquet" in message and "column 'hist_cate_id'" in message
