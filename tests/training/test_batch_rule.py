"""``train.batch_size_rule``: the rule as a pure function, and how the config layers set it.

Every expected batch size below is argued from step counts: an epoch of n samples
at batch b has ceil(n / b) optimisation steps, and the rule keeps the configured
(largest) batch when that gives MIN_STEPS_PER_EPOCH steps, else takes the largest
power of two below it that does, but never less than MIN_BATCH.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from din_model.config import config_hash, dump_config, resolve_config
from din_model.errors import ConfigError
from din_model.training.batch_rule import (
    MIN_BATCH,
    MIN_STEPS_PER_EPOCH,
    auto_batch_size,
    choose_batch_size,
    steps_per_epoch,
)

S, FLOOR = MIN_STEPS_PER_EPOCH, MIN_BATCH


def test_the_numbers_the_defaults_and_the_readme_rely_on() -> None:
    # The examples below and README's table are worked out for these two numbers.
    assert (S, FLOOR) == (500, 16)


@pytest.mark.parametrize(
    ("samples", "largest", "expected"),
    [
        # Amazon Electronics of the paper: 2.6M / 1024 = 2,540 steps >= 500: unchanged
        (2_600_000, 1024, 1024),
        # the synthetic Electronics-scale set (`din synth amazon`, scale 1.0): 2.2M samples,
        # 2,149 steps at 1024: the large batch stays
        (2_200_000, 1024, 1024),
        # Taobao UserBehavior slice: 1024 -> 161, 512 -> 321 steps (< 500), 256 -> 641: 256
        (164_060, 1024, 256),
        # MovieLens 100K (data seed 42): 256 -> 260 steps (< 500), 128 -> 520: 128
        (66_516, 256, 128),
        # MovieLens 1M has ~10x more samples: 2,700 steps at 256, unchanged
        (700_000, 256, 256),
        # Musical_Instruments 2014: 32 -> 374 steps (< 500), 16 -> 747: 16
        (11_948, 1024, 16),
        # Magazine_Subscriptions 2018: 16 -> 158 steps (< 500) but the floor stops the halving
        (2_516, 1024, FLOOR),
        # exactly 500 steps at 512 (256,000 = 500 x 512): 512 is long enough
        (256_000, 1024, 512),
        # 256,001 rows: 501 steps at 512 (the last batch of 1 row is a step)
        (256_001, 1024, 512),
        # 255,488 = 499 x 512 rows: 499 steps at 512, 998 at 256
        (255_488, 1024, 256),
        # a configured size that is no power of two: 1000 -> 100 steps, then the powers of
        # two below it: 512 -> 196, 256 -> 391, 128 -> 782 steps: 128
        (100_000, 1000, 128),
        # a configured size below the floor is never raised
        (50, 8, 8),
        # 1 row: 1 step at any size; the floor (capped by the configured size) is the answer
        (1, 1024, FLOOR),
    ],
)
def test_auto_batch_size_by_step_counts(samples: int, largest: int, expected: int) -> None:
    assert auto_batch_size(samples, largest) == expected


@pytest.mark.parametrize("largest", [1, 7, 16, 100, 256, 1000, 1024, 4096])
def test_the_rule_is_the_largest_batch_with_enough_steps_and_idempotent(largest: int) -> None:
    for samples in [1, 5, 499, 500, 501, 7_999, 8_000, 8_001, 2_516, 11_948, 66_516, 10**7]:
        size = auto_batch_size(samples, largest)
        assert 1 <= size <= largest
        # either the configured size, or a power of two below it
        assert size == largest or size & (size - 1) == 0
        # long enough epochs, unless the floor (or a smaller configured size) stopped it
        assert steps_per_epoch(samples, size) >= S or size == min(largest, FLOOR)
        # no larger power of two (up to the configured size) would also have been long enough
        if size != largest:
            double = 2 * size
            assert double > largest or steps_per_epoch(samples, double) < S
        # the recorded number gives itself again: a run is reproduced from its config.yaml
        assert auto_batch_size(samples, size) == size


def test_steps_per_epoch_counts_the_last_smaller_batch() -> None:
    assert steps_per_epoch(2_516, 32) == 79 == math.ceil(2_516 / 32)
    assert steps_per_epoch(2_048, 32) == 64


def test_fixed_sizes_are_used_as_given_and_bad_values_are_refused() -> None:
    fixed = choose_batch_size({"batch_size": 1024, "batch_size_rule": "fixed"}, 2_516)
    assert (fixed.batch_size, fixed.steps_per_epoch) == (1024, 3)  # ceil(2516 / 1024)
    auto = choose_batch_size({"batch_size": 1024, "batch_size_rule": "auto"}, 2_516)
    assert auto.batch_size == auto_batch_size(2_516, 1024) and "auto" in auto.describe()
    with pytest.raises(ConfigError, match="train.batch_size_rule: unknown 'atuo'"):
        choose_batch_size({"batch_size": 1024, "batch_size_rule": "atuo"}, 2_516)
    with pytest.raises(ConfigError, match="train.batch_size must be an integer >= 1"):
        choose_batch_size({"batch_size": 0, "batch_size_rule": "auto"}, 2_516)
    with pytest.raises(ConfigError, match="needs training samples"):
        auto_batch_size(0, 1024)


# -- how the config layers set the rule ----------------------------------------------------


def test_defaults_and_dataset_specs_give_the_largest_batch_of_the_auto_rule() -> None:
    assert resolve_config("din")["train"]["batch_size_rule"] == "auto"
    amazon = resolve_config("din", "amazon")["train"]
    assert (amazon["batch_size"], amazon["batch_size_rule"]) == (1024, "auto")
    movielens = resolve_config("din", "movielens")["train"]
    assert (movielens["batch_size"], movielens["batch_size_rule"]) == (256, "auto")


def test_a_batch_size_the_user_gives_is_fixed(tmp_path: Path) -> None:
    by_set = resolve_config("din", "amazon", overrides=["train.batch_size=256"])["train"]
    assert (by_set["batch_size"], by_set["batch_size_rule"]) == (256, "fixed")
    user = tmp_path / "mine.yaml"
    user.write_text("train:\n  batch_size: 64\n")
    by_file = resolve_config("din", "amazon", config_file=user)["train"]
    assert (by_file["batch_size"], by_file["batch_size_rule"]) == (64, "fixed")
    by_dict = resolve_config("din", "amazon", layers=[{"train": {"batch_size": 128}}])["train"]
    assert (by_dict["batch_size"], by_dict["batch_size_rule"]) == (128, "fixed")
    # a layer that does not touch the batch size leaves the rule alone
    other = resolve_config("din", "amazon", overrides=["train.epochs=2"])["train"]
    assert other["batch_size_rule"] == "auto"


def test_a_user_may_set_the_largest_batch_of_the_auto_rule(tmp_path: Path) -> None:
    user = tmp_path / "cap.yaml"
    user.write_text("train:\n  batch_size: 512\n  batch_size_rule: auto\n")
    capped = resolve_config("din", "amazon", config_file=user)["train"]
    assert (capped["batch_size"], capped["batch_size_rule"]) == (512, "auto")
    # a later layer that gives a batch size without a rule fixes it again
    later = resolve_config("din", "amazon", config_file=user, overrides=["train.batch_size=99"])
    assert (later["train"]["batch_size"], later["train"]["batch_size_rule"]) == (99, "fixed")
    with pytest.raises(ConfigError, match=r"--set: 'train.batch_size_rule' expects one of"):
        resolve_config("din", overrides=["train.batch_size_rule=atuo"])


def test_a_resolved_config_resolves_to_itself() -> None:
    # fit() and tuning trials pass a resolved config as a layer: its rule must survive
    for overrides in ([], ["train.batch_size=64"]):
        config = resolve_config("din", "amazon", overrides=overrides)
        assert resolve_config("din", "amazon", layers=[config]) == config


def test_explicit_configs_keep_their_hash() -> None:
    # The hash of a config with a batch size the user gave is what it was before
    # batch_size_rule existed: the key is left out at its value `fixed`.
    config = resolve_config("din", "amazon", overrides=["train.batch_size=256"])
    train = {k: v for k, v in config["train"].items() if k != "batch_size_rule"}
    assert config_hash(config) == config_hash({**config, "train": train})
    # the auto rule is part of what a config computes: same number, other hash
    rule = {"train": {"batch_size": 256, "batch_size_rule": "auto"}}
    assert config_hash(resolve_config("din", "amazon", layers=[rule])) != config_hash(config)
    assert "batch_size_rule: fixed" in dump_config(config)
