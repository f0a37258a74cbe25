"""Layered configuration: model defaults + train.yaml < dataset < user file < --set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from din_model.config import config_hash, dump_config, parse_override, resolve_config
from din_model.errors import ConfigError
from din_model.registry import dataset_entry


def test_layers_apply_in_order(tmp_path: Path) -> None:
    base = resolve_config("din")
    assert base["model"]["attention_hidden"] == [80, 40]  # model default YAML
    assert base["train"]["optimizer"] == "adam"  # train.yaml
    dataset = yaml.safe_load(dataset_entry("amazon").origins["train"].read_text())
    with_dataset = resolve_config("din", "amazon")  # the `train:` of the dataset's spec
    assert with_dataset["train"]["batch_size"] == dataset["train"]["batch_size"] == 1024

    user = tmp_path / "mine.yaml"
    user.write_text("train:\n  batch_size: 77\n  learning_rate: 1e-3\nmodel:\n  dropout: 0.1\n")
    layered = resolve_config(
        "din", "amazon", config_file=user, overrides=["train.batch_size=99", "model.mlp_hidden=[8]"]
    )
    assert layered["train"]["batch_size"] == 99  # --set beats the user file
    assert layered["train"]["learning_rate"] == 0.001  # YAML 1.1's "1e-3" string repaired
    assert layered["model"]["dropout"] == 0.1
    assert layered["model"]["mlp_hidden"] == [8]


def test_presets_resolve_by_name() -> None:
    paper = resolve_config("din_dice", config_file="paper")
    assert paper["model"]["embedding_dim"] == 64
    assert paper["model"]["attention_hidden"] == [80, 40]
    assert paper["model"]["mlp_hidden"] == [200, 80]
    assert paper["model"]["activation"] == "dice"
    assert paper["model"]["attention_activation"] == "dice"
    recbole = resolve_config("base", config_file="recbole")
    assert recbole["model"]["embedding_dim"] == 10
    assert recbole["model"]["mlp_hidden"] == [256, 256, 256]
    assert recbole["model"]["pooling_mode"] == "mean"


def test_keys_of_other_models_are_dropped_not_rejected() -> None:
    # the paper preset sets DIN's attention keys; the BaseModel has none
    config = resolve_config("base", config_file="paper")
    assert "attention_hidden" not in config["model"]
    assert config["model"]["activation"] == "dice"


def test_unknown_key_names_the_key_and_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as error:
        resolve_config("din", overrides=["train.learning_rat=0.1"])
    message = str(error.value)
    assert "train.learning_rat" in message
    assert "did you mean train.learning_rate" in message
    assert "train.batch_size" in message  # the valid keys of the section are listed


def test_unknown_key_in_a_user_file(tmp_path: Path) -> None:
    user = tmp_path / "typo.yaml"
    user.write_text("regularizer:\n  mba:\n    wieght: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo.yaml.*regularizer.mba.wieght"):
        resolve_config("din", config_file=user)


def test_values_are_yaml_scalars_and_type_checked() -> None:
    assert parse_override("model.mlp_hidden=[200, 80]") == ("model.mlp_hidden", [200, 80])
    assert parse_override("train.shuffle=false") == ("train.shuffle", False)
    assert parse_override("train.device=cuda") == ("train.device", "cuda")
    assert parse_override("regularizer.mba.tables=[item_id]")[1] == ["item_id"]
    with pytest.raises(ConfigError, match="train.epochs.*int"):
        resolve_config("din", overrides=["train.epochs=many"])
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_override("epochs=3")
    # nothing is evaluated: a Python expression stays a string and fails the type check
    with pytest.raises(ConfigError, match="train.epochs"):
        resolve_config("din", overrides=["train.epochs=__import__('os').getpid()"])


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n  batch_size: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: invalid YAML"):
        resolve_config("din", config_file=bad)


def test_missing_config_file_or_preset() -> None:
    with pytest.raises(ConfigError, match="no such config file or preset.*paper"):
        resolve_config("din", config_file="papr")


def test_unknown_model() -> None:
    with pytest.raises(ConfigError, match="unknown model 'dien'"):
        resolve_config("dien")


def test_dump_round_trips_and_hash_ignores_display_settings() -> None:
    config = resolve_config("din", "movielens", overrides=["train.epochs=2"])
    assert yaml.safe_load(dump_config(config, header="x")) == config
    quiet = resolve_config("din", "movielens", overrides=["train.epochs=2", "train.progress=none"])
    other = resolve_config("din", "movielens", overrides=["train.epochs=3"])
    assert config_hash(config) == config_hash(quiet)
    assert config_hash(config) != config_hash(other)
