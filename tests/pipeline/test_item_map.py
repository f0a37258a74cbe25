"""The paper's Fig. 5 and Fig. 6 from a real run: DIN+Dice on Amazon Magazine_Subscriptions.

One module-scoped ``din-train`` run (``magazine_run``, the tiny config) feeds every
test: its ``item_map.parquet`` is checked against the prepared data (the most frequent
training items, their categories in the item table), against the model (each CTR is
the model's score of that user with that item), against itself (the t-SNE is
reproducible), and the run's MLflow artifacts hold both figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch

pytestmark = pytest.mark.slow

#: A batch of one row against the map's batch of every item: the CPU's matrix kernels may
#: block the float32 sums differently. Two summation orders of a width-K dot product
#: differ by at most 2 * K * 2**-24 * sum|a_i * b_i| (Higham, Accuracy and Stability, 3.1);
#: the tiny config's layers are at most 48 wide, so 5.7e-6 of the products' magnitude per
#: layer. The model's activations are O(1) (embeddings start at std 1e-4, one epoch), three
#: linear layers lead to the logit and the sigmoid's slope is at most 1/4: the probability
#: moves by a few 1e-6 at most, below 1e-5.
CTR_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def run_dir(magazine_run: dict[str, Any]) -> Path:
    return Path(magazine_run["run_dir"])


@pytest.fixture(scope="module")
def prepared(magazine_run: dict[str, Any]) -> Path:
    return Path(magazine_run["prepared_dir"])


@pytest.fixture(scope="module")
def scored(run_dir: Path, prepared: Path):
    """The run's best model and its test split, loaded anew (CPU, eval mode)."""
    from din_model.pipeline import load_trained_model
    from din_model.tensors.split import load_prepared_split

    model, feature_map, config = load_trained_model(run_dir / "checkpoints" / "best.pt")
    test = load_prepared_split(prepared, "test", feature_map, config["train"]["max_len"])
    return model, feature_map, config, test


def _train_counts(prepared: Path) -> pl.DataFrame:
    """item_id -> occurrences in train.parquet (candidate or history), counted with polars."""
    train = pl.read_parquet(prepared / "train.parquet", columns=["item_id", "hist_item_id"])
    ids = pl.concat([train["item_id"], train["hist_item_id"].explode().drop_nulls()])
    counts = ids.value_counts(name="n").rename({ids.name: "item_id"})
    return counts.sort(["n", "item_id"], descending=[True, False])


def test_din_run_writes_the_item_map_of_its_most_frequent_items(
    run_dir: Path, prepared: Path
) -> None:
    from din_model.pipeline.item_map import DEFAULT_ITEMS, read_item_map

    item_map = read_item_map(run_dir / "item_map.parquet")
    frame = item_map.frame
    counts = _train_counts(prepared)
    assert counts.height < DEFAULT_ITEMS  # Magazine is small: the default cap keeps every item
    assert frame["item_id"].to_list() == counts["item_id"].to_list()
    assert frame["train_count"].to_list() == counts["n"].to_list()
    assert item_map.table == "item_id" and item_map.category_feature == "cate_id"
    assert frame["x"].is_finite().all() and frame["y"].is_finite().all()

    # categories: the item table the run carries (raw ASIN -> category), as prepared
    items = pl.read_parquet(run_dir / "serving" / "items.parquet")
    joined = frame.join(items, left_on="item", right_on="item_id", how="left")
    assert joined.height == frame.height and joined["category_right"].null_count() == 0
    assert joined["category"].to_list() == joined["category_right"].to_list()


def test_the_cap_keeps_the_most_frequent_items(scored, prepared: Path) -> None:
    from din_model.pipeline.item_map import build_item_map

    model, feature_map, _, test = scored
    capped = build_item_map(model, test, feature_map, torch.device("cpu"), prepared, items=40)
    expected = _train_counts(prepared).head(40)  # ties by id, as the map breaks them
    assert capped.frame["item_id"].to_list() == expected["item_id"].to_list()
    assert build_item_map(model, test, feature_map, torch.device("cpu"), prepared, items=0) is None


def test_the_ctr_is_the_models_score_of_the_chosen_user_with_each_item(
    run_dir: Path, scored
) -> None:
    from din_model.pipeline.attention_examples import read_attention_examples
    from din_model.pipeline.item_map import read_item_map
    from din_model.tensors.batches import take

    model, _, _, test = scored
    item_map = read_item_map(run_dir / "item_map.parquet")
    user = item_map.user
    row = user.test_row
    assert test.label[row] == 1 and int(test.user[row]) == user.user_id
    history = test.sequences["hist_cate_id"][row, : user.history_length]
    assert user.history_length == int(test.lengths[row])
    assert user.history_categories == len(set(history.tolist())) >= 2  # a mixed history
    # the user of Fig. 5's first panel
    assert read_attention_examples(run_dir / "attention.json")[0].row == row

    frame = item_map.frame
    ctr = frame["ctr"].to_numpy()
    assert ((ctr > 0) & (ctr < 1)).all()
    expected = []
    for item, cate in zip(frame["item_id"].to_list(), frame["cate_id"].to_list(), strict=True):
        batch = take(test, torch.tensor([row]))
        batch["item_id"] = torch.tensor([item])
        batch["cate_id"] = torch.tensor([cate])
        with torch.no_grad():
            expected.append(float(torch.sigmoid(model(batch).double())[0]))
    np.testing.assert_allclose(ctr, expected, rtol=0, atol=CTR_TOLERANCE)
    seen = set(test.sequences["hist_item_id"][row, : user.history_length].tolist())
    assert frame["in_history"].to_list() == [i in seen for i in frame["item_id"].to_list()]


def test_the_tsne_is_reproducible(run_dir: Path, prepared: Path, scored) -> None:
    """The same checkpoint maps to the same coordinates, bit for bit: the t-SNE input is
    the same float32 embedding rows, its seed is fixed and it runs on one thread, so the
    same floating-point operations run in the same order."""
    from din_model.pipeline.item_map import build_item_map, read_item_map

    model, feature_map, config, test = scored
    written = read_item_map(run_dir / "item_map.parquet").frame
    again = build_item_map(
        model,
        test,
        feature_map,
        torch.device("cpu"),
        prepared,
        items=config["train"]["item_map_items"],
        max_len=config["train"]["max_len"],
    ).frame
    assert np.array_equal(again["x"].to_numpy(), written["x"].to_numpy())
    assert np.array_equal(again["y"].to_numpy(), written["y"].to_numpy())
    np.testing.assert_allclose(again["ctr"], written["ctr"], rtol=0, atol=CTR_TOLERANCE)


def test_attention_examples_are_users_whose_histories_mix_categories(
    run_dir: Path, prepared: Path
) -> None:
    test = pl.read_parquet(prepared / "test.parquet").filter(pl.col("label") == 1)
    mixed = test.filter(pl.col("hist_cate_id").list.n_unique() >= 2)["user_id"].n_unique()
    examples = json.loads((run_dir / "attention.json").read_text())
    assert mixed >= len(examples) == 3  # enough such users exist on Magazine
    for example in examples:
        assert len(set(example["history"]["hist_cate_id"])) >= 2, example
        assert example["softmax"] is False


def test_both_figures_are_logged_to_mlflow(magazine_run: dict[str, Any], run_dir: Path) -> None:
    import matplotlib.pyplot as plt
    from mlflow import MlflowClient

    from din_model.pipeline.item_map import read_item_map
    from tasks.embedding_plots import item_embedding_figure

    client = MlflowClient()
    logged = {item.path for item in client.list_artifacts(magazine_run["run_id"], "plots")}
    assert {"plots/attention.png", "plots/item_embeddings.png"} <= logged, logged
    local = client.download_artifacts(magazine_run["run_id"], "plots/item_embeddings.png")
    assert Path(local).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    item_map = read_item_map(run_dir / "item_map.parquet")
    fig = item_embedding_figure(item_map)
    left, right = fig.axes[:2]
    drawn = sum(len(c.get_offsets()) for c in left.collections)
    assert drawn == item_map.frame.height  # every item once, in a category or "other"
    assert f"user {item_map.user.user}" in right.get_title()
    plt.close(fig)


def test_models_without_an_activation_unit_write_no_item_map(
    prepared: Path, tmp_path: Path
) -> None:
    import yaml
    from _pipeline_support import TINY_CONFIG

    from din_model.pipeline import fit_and_score

    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["model"].pop("attention_hidden")
    result = fit_and_score(prepared, tmp_path / "base", "base", None, config)
    assert result.layout.metrics.is_file()
    assert not result.layout.item_map.exists() and not result.layout.attention.exists()


def test_a_negative_item_cap_is_a_config_error() -> None:
    from din_model.errors import ConfigError
    from din_model.pipeline.item_map import item_map_size

    assert item_map_size({"item_map_items": 0}) == 0
    with pytest.raises(ConfigError, match=r"train\.item_map_items: expected a non-negative"):
        item_map_size({"item_map_items": -1})
