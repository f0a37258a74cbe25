"""fit / fit_and_score / evaluate_checkpoint on a hand-written prepared directory."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

import din_model.pipeline.run as api
from din_model.errors import ConfigError, DataError
from din_model.pipeline import (
    evaluate_checkpoint,
    fit,
    fit_and_score,
    load_trained_model,
)
from din_model.training.checkpoint import load_checkpoint
from din_model.training.trainer import Trainer, is_improvement

from ._prepared_data import write_prepared

TIMING = ("samples_per_s", "train_seconds")


def _without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING} for record in history]


def test_same_seed_gives_identical_metrics(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    first = fit(prepared_dir, tmp_path / "a", "din_dice", "mba", fast_config)
    second = fit(prepared_dir, tmp_path / "b", "din_dice", "mba", fast_config)
    assert _without_timing(first.history) == _without_timing(second.history)
    fast_config["train"]["seed"] = 7
    other = fit(prepared_dir, tmp_path / "c", "din_dice", "mba", fast_config)
    assert _without_timing(other.history) != _without_timing(first.history)


def test_fit_and_score_writes_every_output(
    prepared_dir: Path, tmp_path: Path, fast_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded_splits: list[str] = []
    original = api.load_prepared_split

    def spy(data_dir, split, *args, **kwargs):
        loaded_splits.append(split)
        return original(data_dir, split, *args, **kwargs)

    monkeypatch.setattr(api, "load_prepared_split", spy)
    records: list[dict] = []
    out = tmp_path / "run"
    result = fit_and_score(
        prepared_dir, out, "din", None, fast_config, on_epoch_end=records.append
    )
    assert loaded_splits.count("test") == 1  # test scored once, after model selection

    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("valid", "test"):
        assert set(metrics[split]) == {"auc", "gauc", "gauc_users", "logloss", "n"}
    best = metrics["best_epoch"]
    chosen = metrics["history"][best - 1]
    assert metrics["valid"]["gauc"] == chosen["valid_gauc"]
    assert max(r["valid_gauc"] for r in metrics["history"]) == chosen["valid_gauc"]
    assert [r["epoch"] for r in records] == [1, 2]
    assert set(records[0]) >= {
        "epoch",
        "train_loss",
        "valid_auc",
        "valid_gauc",
        "valid_logloss",
        "valid_gauc_users",
        "samples_per_s",
    }

    predictions = pl.read_parquet(out / "predictions.parquet")
    test = pl.read_parquet(prepared_dir / "test.parquet")
    assert predictions.columns == ["user_id", "label", "score"]
    assert predictions.height == test.height == metrics["test"]["n"]
    assert predictions["user_id"].to_list() == test["user_id"].to_list()

    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config == result.fit.config
    assert config["model"]["embedding_dim"] == 8

    best_ckpt = load_checkpoint(out / "checkpoints" / "best.pt")
    assert best_ckpt["epoch"] == best and best_ckpt["kind"] == "model"
    last_ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert last_ckpt["training_state"]["epoch"] == 2 and last_ckpt["training_state"]["completed"]

    again = evaluate_checkpoint(out / "checkpoints" / "best.pt", prepared_dir, "test")
    assert again.metrics == metrics["test"]
    assert again.predictions.equals(predictions)


def test_load_trained_model_scores_like_training(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    result = fit(prepared_dir, tmp_path / "run", "din", None, fast_config)
    model, feature_map, config = load_trained_model(result.best_checkpoint)
    assert not model.training
    assert config["model"]["embedding_dim"] == 8 and feature_map.dataset == "movielens"
    valid = evaluate_checkpoint(result.best_checkpoint, prepared_dir, "valid")
    assert valid.metrics == result.valid_metrics
    with torch.no_grad():
        weights = model.attention_weights(
            {
                "item_id": torch.tensor([2]),
                "cate_id": torch.tensor([2]),
                "hist_item_id": torch.tensor([[3, 4, 0]]),
                "hist_cate_id": torch.tensor([[3, 4, 0]]),
                "weekday": torch.tensor([2]),
            }
        )
    assert weights.shape == (1, 3) and float(weights[0, 2]) == 0.0


def test_early_stopping_on_validation_gauc(
    prepared_dir: Path, tmp_path: Path, fast_config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    falling = iter([0.70, 0.69, 0.68, 0.80, 0.90])

    def fake_validate(self, split):
        return {"auc": 0.5, "gauc": next(falling), "gauc_users": 3, "logloss": 0.7, "n": 9}

    monkeypatch.setattr(Trainer, "validate", fake_validate)
    fast_config["train"].update(epochs=5, early_stopping_patience=2)
    result = fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert result.stopped_early and result.best_epoch == 1
    assert is_improvement(0.5, None, "gauc") and is_improvement(0.4, 0.5, "logloss")
    assert not is_improvement(float("nan"), 0.5, "gauc")


def test_resume_refuses_a_checkpoint_of_another_config(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    fast_config["train"]["epochs"] = 1
    fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    fast_config["train"]["learning_rate"] = 0.5
    with pytest.raises(ConfigError, match="another config.*--restart"):
        fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    restarted = fit(prepared_dir, tmp_path / "run", "base", None, fast_config, resume=False)
    assert restarted.resumed_from_epoch is None


def test_a_finished_run_is_not_trained_again(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    first = fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    replayed: list[dict] = []
    again = fit(
        prepared_dir, tmp_path / "run", "base", None, fast_config, on_epoch_end=replayed.append
    )
    assert again.resumed_from_epoch == 2
    assert again.history == first.history == replayed


def test_checkpoint_of_other_features_is_refused(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    fast_config["train"]["epochs"] = 1
    result = fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    other = tmp_path / "other"
    write_prepared(other, users=20, per_user=5)
    feature_map = json.loads((other / "feature_map.json").read_text())
    feature_map["tables"]["item_id"]["vocab_size"] += 5
    (other / "feature_map.json").write_text(json.dumps(feature_map))
    with pytest.raises(DataError, match="feature_map.json.*trained with"):
        evaluate_checkpoint(result.best_checkpoint, other, "test")


@pytest.mark.parametrize(
    ("settings", "expected_lrs"),
    [
        ({"optimizer": "adam", "lr_schedule": "step", "lr_gamma": 0.5}, [0.01, 0.005, 0.0025]),
        (
            {"optimizer": "adagrad", "lr_schedule": "cosine", "lr_min": 0.001},
            [0.01, 0.00775, 0.00325],
        ),
        ({"optimizer": "sgd", "momentum": 0.9, "grad_clip_norm": 1.0}, [0.01, 0.01, 0.01]),
    ],
    ids=["adam-step", "adagrad-cosine", "sgd-clipped"],
)
def test_optimizers_and_schedules(
    prepared_dir: Path, tmp_path: Path, fast_config: dict, settings: dict, expected_lrs: list
) -> None:
    fast_config["train"].update(epochs=3, early_stopping_patience=None, **settings)
    result = fit(prepared_dir, tmp_path / "run", "base", None, fast_config)
    assert [r["learning_rate"] for r in result.history] == pytest.approx(expected_lrs)
    assert all(r["train_loss"] > 0 for r in result.history)


def test_unknown_optimizer_or_schedule_is_a_config_error(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    fast_config["train"]["optimizer"] = "lamb"
    with pytest.raises(ConfigError, match="unknown 'lamb'.*adam, adagrad, sgd"):
        fit(prepared_dir, tmp_path / "a", "base", None, fast_config)
    fast_config["train"].update(optimizer="adam", lr_schedule="linear")
    with pytest.raises(ConfigError, match="lr_schedule: unknown 'linear'"):
        fit(prepared_dir, tmp_path / "b", "base", None, fast_config)
