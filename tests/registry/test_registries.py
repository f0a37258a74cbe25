"""The model and dataset registries: what they list, what they refuse, and a new model and
dataset registered from outside the repository and trained end to end through the CLI."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from din_model.cli._main import build_parser
from din_model.errors import ConfigError
from din_model.registry import (
    MODEL_DIRS_ENV,
    SPEC_DIRS_ENV,
    ablation_grid,
    adapter_module,
    clear_caches,
    dataset_entry,
    dataset_names,
    fetchable_datasets,
    model_entry,
    model_names,
    spec_families,
    synthetic_datasets,
)

PAPER_MODELS = ("lr", "base", "wide_deep", "pnn", "deepfm", "din", "din_dice")

# -- a toy model and a toy dataset, written where a user would keep them -------------------

TOY_MODEL_MODULE = '''
"""A toy CTR model: mean-pooled behaviour, concatenated embeddings, one linear layer."""

from torch import nn

from din_model.layers.pooling import SequencePooling
from din_model.models.base import CTRModel, deep_embedding


class ToyModel(CTRModel):
    def __init__(self, feature_map, options):
        super().__init__(feature_map, options, deep_embedding(feature_map, options))
        self.pooling = SequencePooling("mean")
        self.out = nn.Linear(self.sparse_dim + self.behaviour_dim, 1)

    def forward(self, batch):
        embedded = self.embedding(batch)
        behaviour = self.pooling(self.behaviour_keys(embedded), embedded.mask)
        return self.out(self.deep_input(embedded, behaviour)).squeeze(-1)
'''

TOY_MODEL_YAML = """
class: toy_ctr:ToyModel
description: "Mean-pooled embeddings and one linear layer"
model:
  embedding_dim: 4
  embedding_dims: {}
  embedding_init_std: 0.01
"""

TOY_ADAPTER_MODULE = '''
"""A toy adapter: ``events.csv`` with user, item, category and timestamp columns."""

from pathlib import Path

import polars as pl

from din_model.data.adapters._tables import assemble_canonical, canonical_interactions
from din_model.data.canonical.schema import CanonicalData

LAYOUT = "toy-csv"
LAYOUT_FILES = {LAYOUT: "events.csv (user,item,category,timestamp; with a header)"}


def detect(source: Path) -> str | None:
    return LAYOUT if (source / "events.csv").is_file() else None


def read(source: Path, layout: str, policy) -> CanonicalData:
    path = source / "events.csv"
    frame = pl.read_csv(path, schema_overrides={"user": pl.String, "item": pl.String})
    frame = frame.rename({"user": "user_id", "item": "item_id"}).with_row_index("line")
    frame = frame.with_columns(pl.col("line").cast(pl.Int64))
    items = frame.select("item_id", "category").unique("item_id", keep="first", maintain_order=True)
    return assemble_canonical(
        "toy",
        layout,
        canonical_interactions(frame),
        metadata=items,
        profiles=None,
        source_files=[path],
        report={},
    )
'''

TOY_SPEC_YAML = """
family: toy
description: toy events, one positive and one sampled negative per position
layouts: [toy-csv]
dataset: toy
adapter: toy_adapter
train:
  batch_size: 64
deployment:
  model: toy_model
protocol:
  name: sequential
  max_len: 5
  min_interactions: 3
validation:
  positive_rate: [0.5, 0.5]
features:
  user_profile: []
  ad:
    - {name: item_id, source: item_id}
    - {name: cate_id, source: category}
  behaviour:
    - {name: hist_item_id, source: item_id, target: item_id}
    - {name: hist_cate_id, source: category, target: cate_id}
  context:
    - {name: hour, source: hour}
"""


def write_toy_model(root: Path) -> tuple[Path, Path]:
    """(folder for DIN_MODEL_DIRS, folder for PYTHONPATH) holding the toy model."""
    models, code = root / "models", root / "code"
    models.mkdir(parents=True)
    code.mkdir(parents=True, exist_ok=True)
    (models / "toy_model.yaml").write_text(TOY_MODEL_YAML)
    (code / "toy_ctr.py").write_text(TOY_MODEL_MODULE)
    return models, code


def write_toy_dataset(root: Path) -> tuple[Path, Path]:
    """(folder for DIN_SPEC_DIRS, folder for PYTHONPATH) holding the toy dataset."""
    specs, code = root / "specs", root / "code"
    specs.mkdir(parents=True)
    code.mkdir(parents=True, exist_ok=True)
    (specs / "toy.yaml").write_text(TOY_SPEC_YAML)
    (code / "toy_adapter.py").write_text(TOY_ADAPTER_MODULE)
    return specs, code


def write_toy_events(folder: Path, users: int = 50, events: int = 8) -> Path:
    """400 events: each user favours one of five categories (so there is signal to learn)."""
    folder.mkdir(parents=True)
    rng = random.Random(0)
    lines = ["user,item,category,timestamp"]
    for user in range(users):
        favourite = user % 5
        for k in range(events):
            category = favourite if rng.random() < 0.8 else rng.randrange(5)
            item = category * 8 + rng.randrange(8)
            lines.append(f"u{user},i{item},c{category},{1_500_000_000 + 3600 * (7 * user + k)}")
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture()
def toy_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The toy model and dataset registered in this process (env vars and sys.path)."""
    models, code = write_toy_model(tmp_path)
    specs, _ = write_toy_dataset(tmp_path)
    monkeypatch.setenv(MODEL_DIRS_ENV, str(models))
    monkeypatch.setenv(SPEC_DIRS_ENV, str(specs))
    monkeypatch.syspath_prepend(str(code))
    return tmp_path


# -- what the registries list ---------------------------------------------------------------


def test_the_packaged_registries_list_exactly_the_existing_names() -> None:
    assert model_names() == PAPER_MODELS
    assert dataset_names() == ("amazon", "movielens", "taobao")
    assert spec_families() == ("amazon", "movielens", "taobao_display_ad", "taobao_user_behavior")
    assert dataset_entry("taobao").families == ("taobao_display_ad", "taobao_user_behavior")
    assert fetchable_datasets() == ("amazon", "movielens", "taobao")
    assert synthetic_datasets() == ("amazon",)
    prepare = build_parser(["din_model.cli"])._subparsers._group_actions[0].choices["prepare"]
    offered = {action.dest: action.choices for action in prepare._actions}
    assert dataset_names() == tuple(offered["dataset"])  # the CLI offers the registry's names


def test_ablation_grid_is_the_papers_comparison_in_order() -> None:
    grid = ablation_grid()
    assert grid.models == PAPER_MODELS
    assert grid.regularized_model == "din"
    assert grid.regularizers == ("none", "dropout", "filter", "difacto", "mba")


def small_feature_map():
    """Item and category tables shared by the candidate and its history, plus the hour."""
    from din_model.data.specs.feature_map import FeatureMap, FeatureSpec, TableSpec

    features = [
        FeatureSpec("item_id", "ad", "sparse", "item_id"),
        FeatureSpec("cate_id", "ad", "sparse", "cate_id"),
        FeatureSpec("hist_item_id", "behaviour", "sequence", "item_id", target="item_id"),
        FeatureSpec("hist_cate_id", "behaviour", "sequence", "cate_id", target="cate_id"),
        FeatureSpec("hour", "context", "sparse", "hour"),
    ]
    tables = {name: TableSpec(name, 10) for name in ("item_id", "cate_id", "hour")}
    return FeatureMap(dataset="toy", protocol="test", max_len=3, tables=tables, features=features)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_every_model_builds_through_the_registry(name: str) -> None:
    import torch

    from din_model.models import build_model

    torch.manual_seed(0)
    model = build_model(name, small_feature_map(), {})
    assert type(model).__name__ == model_entry(name).class_path.split(":")[1]
    assert model.model_config == yaml.safe_load(model_entry(name).path.read_text())["model"]
    ids = torch.randint(1, 10, (4,))
    history = torch.tensor([[1, 2, 0], [3, 0, 0], [0, 0, 0], [4, 5, 6]])
    batch = {"item_id": ids, "cate_id": ids, "hour": ids}
    batch |= {"hist_item_id": history, "hist_cate_id": history}
    assert model.eval()(batch).shape == (4,)


@pytest.mark.parametrize("name", ["amazon", "movielens", "taobao"])
def test_every_dataset_has_a_working_adapter(name: str) -> None:
    module = adapter_module(name)
    assert module.LAYOUT_FILES and callable(module.detect) and callable(module.read)


def test_regularizer_defaults_live_in_train_yaml_only() -> None:
    from din_model.config.files import TRAIN_DEFAULTS
    from din_model.regularizers import build_regularizer

    train = yaml.safe_load(TRAIN_DEFAULTS.read_text())
    for name, section in train["regularizer"].items():
        if isinstance(section, dict):
            assert build_regularizer(name, {}).config == section
    with pytest.raises(ConfigError, match="regularizer.mba.wieght"):
        build_regularizer("mba", {"mba": {"wieght": 0.1}})


# -- what they refuse -----------------------------------------------------------------------


def test_unknown_names_are_config_errors_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="unknown model 'xgboost': choose one of lr, base"):
        model_entry("xgboost")
    with pytest.raises(ConfigError, match="unknown dataset 'criteo': choose one of amazon, "):
        dataset_entry("criteo")
    from din_model.data.specs.spec import load_spec

    with pytest.raises(ConfigError, match="unknown spec family 'criteo'.*amazon, movielens"):
        load_spec("criteo")


def test_conflicting_dataset_level_keys_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs, _ = write_toy_dataset(tmp_path)
    second = TOY_SPEC_YAML.replace("family: toy", "family: toy_b").replace("toy-csv", "toy-b")
    (specs / "toy_b.yaml").write_text(second.replace("batch_size: 64", "batch_size: 32"))
    monkeypatch.setenv(SPEC_DIRS_ENV, str(specs))
    with pytest.raises(ConfigError, match="dataset 'toy': 'train' differs between .*toy.yaml"):
        dataset_names()
    # the same value twice is fine: the key may be repeated in each spec of a dataset
    (specs / "toy_b.yaml").write_text(second)
    clear_caches()  # the folder changed in place
    assert dataset_entry("toy").families == ("toy", "toy_b")


def test_registry_file_mistakes_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    models = tmp_path / "models"
    models.mkdir()
    (models / "din.yaml").write_text(TOY_MODEL_YAML)
    monkeypatch.setenv(MODEL_DIRS_ENV, str(models))
    with pytest.raises(ConfigError, match="model 'din' is registered twice"):
        model_names()
    (models / "din.yaml").unlink()
    (models / "typo.yaml").write_text(TOY_MODEL_YAML.replace("class:", "klass:"))
    clear_caches()  # the folder changed in place
    with pytest.raises(ConfigError, match=r"typo.yaml: unknown key\(s\) klass"):
        model_names()
    monkeypatch.setenv(MODEL_DIRS_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="DIN_MODEL_DIRS lists .*nowhere"):
        model_names()


# -- a new model and dataset, registered from outside the package ----------------------------


def test_toy_entries_reach_config_build_and_deployments(toy_registry: Path) -> None:
    from din_model.config import resolve_config
    from flows.deployments import deployment_parameters

    assert "toy_model" in model_names() and "toy" in dataset_names()
    assert "toy_model" not in ablation_grid().models  # no `ablation:` key
    config = resolve_config("toy_model", "toy")
    assert config["model"] == {"embedding_dim": 4, "embedding_dims": {}, "embedding_init_std": 0.01}
    assert config["train"]["batch_size"] == 64  # the toy spec's `train:`
    assert deployment_parameters("toy") == {
        "dataset": "toy",
        "source": "auto",
        "model": "toy_model",
        "regularizer": "none",
        "skip_unchanged": True,
    }
    assert deployment_parameters("movielens")["model"] == "din"  # no `deployment:`: defaults
    from din_model.data.sources.catalog import get_source

    with pytest.raises(ConfigError, match="dataset 'toy' has no download source"):
        get_source("toy")


def _din(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    din = Path(sys.executable).with_name("din")
    command = [str(din)] if din.is_file() else [sys.executable, "-m", "din_model.cli"]
    return subprocess.run(
        [*command, *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_toy_model_and_dataset_train_end_to_end_through_the_cli(tmp_path: Path) -> None:
    """Registered by files alone (no repository file changes): prepare, then train."""
    models, code = write_toy_model(tmp_path)
    specs, _ = write_toy_dataset(tmp_path)
    source = write_toy_events(tmp_path / "raw")
    env = {
        **os.environ,
        MODEL_DIRS_ENV: str(models),
        SPEC_DIRS_ENV: str(specs),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")])),
    }
    prepared, run = tmp_path / "prepared", tmp_path / "run"

    done = _din(
        "prepare", "--dataset", "toy", "--source", str(source), "--out", str(prepared), env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((prepared / "feature_map.json").read_text())["dataset"] == "toy"

    done = _din(
        "train",
        "--data", str(prepared),
        "--model", "toy_model",
        "--set", "train.epochs=1",
        "--set", "train.num_threads=1",
        "--set", "train.progress=none",
        "--out", str(run),
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["test"]["auc"])
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["batch_size"] == 64  # the toy spec's training defaults applied
    assert config["model"]["embedding_dim"] == 4  # the toy model's defaults applied


def test_a_broken_registry_file_is_one_line_from_the_cli(tmp_path: Path) -> None:
    """The CLI's choices come from the registries: a broken file fails before any command."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "broken.yaml").write_text("class: toy:Model\nmodel: [\n")
    done = _din("train", "--help", env={**os.environ, MODEL_DIRS_ENV: str(models)})
    assert done.returncode == 2
    assert done.stderr.startswith("din: error: ") and "broken.yaml" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
