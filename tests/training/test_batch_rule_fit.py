"""``din train`` with the default batch size on real Amazon sets: the auto rule's number is
what the run records and trains with. Magazine_Subscriptions (2,516 training samples) is
below the floor's reach; Musical_Instruments (11,948) gets the full MIN_STEPS_PER_EPOCH."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from din_model.cli._main import run
from din_model.config import config_hash
from din_model.data.specs.feature_map import FeatureMap
from din_model.pipeline.prepare import prepare_dataset
from din_model.training.batch_rule import (
    MIN_BATCH,
    MIN_STEPS_PER_EPOCH,
    auto_batch_size,
    steps_per_epoch,
)

# A small network and one epoch: what is checked here is the batch size, not the model.
SMALL = [
    "--set", "model.embedding_dim=8",
    "--set", "model.mlp_hidden=[16]",
    "--set", "model.attention_hidden=[16]",
    "--set", "train.epochs=1",
    "--set", "train.num_threads=1",
    "--set", "train.progress=none",
]  # fmt: skip
AMAZON_LARGEST = 1024  # the `train:` batch size of data/specs/amazon.yaml


@pytest.fixture(scope="module")
def musical(amazon_musical: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("musical") / "prepared"
    prepare_dataset("amazon", amazon_musical, out, seed=42)
    return out


@pytest.fixture(scope="module")
def magazine(amazon_magazine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("magazine") / "prepared"
    prepare_dataset("amazon", amazon_magazine, out, seed=42)
    return out


def din_train(data: Path, out: Path, *args: str) -> tuple[dict, dict]:
    code = run(
        ["train", "--data", str(data), "--model", "din_dice", *SMALL, *args, "--out", str(out)],
        ["din_model.cli"],
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return yaml.safe_load((out / "config.yaml").read_text()), metrics


def test_magazine_with_defaults_records_and_uses_the_auto_batch_size(
    magazine: Path, tmp_path: Path
) -> None:
    samples = FeatureMap.load(magazine).splits["train"]
    expected = auto_batch_size(samples, AMAZON_LARGEST)
    # the case the rule exists for: the spec's 1024 gives ceil(2516 / 1024) = 3 steps; the
    # rule halves down to the floor of 16 rows: ceil(2516 / 16) = 158 steps. Magazine is one
    # of the splits (below MIN_BATCH x MIN_STEPS_PER_EPOCH = 8,000 samples) whose epochs stay
    # shorter than MIN_STEPS_PER_EPOCH: the floor wins over the step count.
    assert expected == MIN_BATCH < AMAZON_LARGEST
    assert samples < MIN_BATCH * MIN_STEPS_PER_EPOCH

    config, metrics = din_train(magazine, tmp_path / "auto")
    assert config["train"]["batch_size"] == expected
    assert config["train"]["batch_size_rule"] == "auto"
    # the trainer counted its optimizer steps: one per batch of the recorded size, as many
    # as any batch of at least MIN_BATCH rows can give (50x the 3 steps of 1024)
    steps = metrics["history"][0]["train_steps"]
    assert steps == steps_per_epoch(samples, MIN_BATCH) == math.ceil(samples / expected)
    assert steps >= 50 * steps_per_epoch(samples, AMAZON_LARGEST)
    assert metrics["config_hash"] == config_hash(config)

    # the recorded config.yaml trains the same run again: same batch size, same metrics
    recorded = tmp_path / "auto" / "config.yaml"
    again, replayed = din_train(magazine, tmp_path / "replay", "--config", str(recorded))
    assert again == config
    timing = {"samples_per_s", "train_seconds"}
    for first, second in zip(metrics["history"], replayed["history"], strict=True):
        assert {k: v for k, v in first.items() if k not in timing} == {
            k: v for k, v in second.items() if k not in timing
        }
    assert replayed["test"] == metrics["test"]


def test_a_batch_size_given_with_set_is_used_as_given(magazine: Path, tmp_path: Path) -> None:
    samples = FeatureMap.load(magazine).splits["train"]
    config, metrics = din_train(magazine, tmp_path / "fixed", "--set", "train.batch_size=1024")
    assert (config["train"]["batch_size"], config["train"]["batch_size_rule"]) == (1024, "fixed")
    assert metrics["history"][0]["train_steps"] == steps_per_epoch(samples, 1024)


def test_musical_instruments_with_defaults_takes_the_minimum_steps_per_epoch(
    musical: Path, tmp_path: Path
) -> None:
    samples = FeatureMap.load(musical).splits["train"]
    config, metrics = din_train(musical, tmp_path / "auto")
    size = config["train"]["batch_size"]
    assert config["train"]["batch_size_rule"] == "auto"
    assert size == auto_batch_size(samples, AMAZON_LARGEST) < AMAZON_LARGEST
    steps = metrics["history"][0]["train_steps"]
    # ceil(11948 / 16) = 747 steps >= 500; ceil(11948 / 32) = 374 would be too few
    assert steps == steps_per_epoch(samples, size) >= MIN_STEPS_PER_EPOCH
    assert steps_per_epoch(samples, 2 * size) < MIN_STEPS_PER_EPOCH  # the largest such size
