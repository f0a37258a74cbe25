"""Regularisers: MBA's formula and sparsity, DiFacto, dense L2, dropout, filter."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError
from din_model.models import build_model
from din_model.pipeline import fit, load_trained_model
from din_model.regularizers import build_regularizer
from din_model.regularizers.base import id_frequencies
from din_model.tensors.batches import iterate_batches
from din_model.tensors.split import load_split

ITEM_FEATURES = ("item_id", "hist_item_id")


def _setup(prepared_dir: Path, name: str, config: dict | None = None):
    feature_map = FeatureMap.load(prepared_dir)
    train = load_split(prepared_dir / "train.parquet", feature_map)
    torch.manual_seed(0)
    model = build_model("din", feature_map, {"embedding_dim": 4, "mlp_hidden": [8]})
    with torch.no_grad():  # rows of a visible size, so the penalty is far from zero
        model.embedding_tables()["item_id"].weight.normal_()
    reg = build_regularizer(name, {name: config or {}})
    reg.prepare(train, feature_map, model)
    batch = next(iterate_batches(train, 32, shuffle=True, seed=1, epoch=1))
    return feature_map, train, model, reg, batch


def _batch_item_ids(batch) -> torch.Tensor:
    ids = torch.unique(torch.cat([batch[f].reshape(-1) for f in ITEM_FEATURES]))
    return ids[ids != 0]


def test_mba_penalty_is_the_papers_formula(prepared_dir: Path) -> None:
    feature_map, train, model, reg, batch = _setup(prepared_dir, "mba", {"weight": 0.01})
    counts = id_frequencies(train, feature_map, "item_id")
    weight = model.embedding_tables()["item_id"].weight.detach()
    ids = _batch_item_ids(batch)
    expected = (
        0.5 * 0.01 * sum(float(weight[j].pow(2).sum()) / int(counts[j]) for j in ids.tolist())
    )
    assert float(reg.penalty(model, batch).detach()) == pytest.approx(expected, rel=1e-5)


def test_mba_touches_only_the_rows_of_the_batch(prepared_dir: Path) -> None:
    feature_map, train, model, reg, batch = _setup(prepared_dir, "mba", {"weight": 0.01})
    table = model.embedding_tables()["item_id"]
    ids = _batch_item_ids(batch)
    absent = torch.ones(table.num_embeddings, dtype=torch.bool)
    absent[ids] = False
    absent[0] = False
    assert absent.any()
    # Rows outside the batch are never read: poisoning them leaves the penalty finite.
    with torch.no_grad():
        saved = table.weight[absent].clone()
        table.weight[absent] = float("nan")
    assert torch.isfinite(reg.penalty(model, batch))
    with torch.no_grad():
        table.weight[absent] = saved
    model.zero_grad()
    reg.penalty(model, batch).backward()
    # The penalty alone yields a sparse gradient holding exactly the batch's rows.
    assert table.weight.grad.is_sparse
    touched = table.weight.grad.coalesce().indices()[0]
    assert torch.equal(torch.sort(touched).values, ids)
    grad = table.weight.grad.to_dense()
    assert torch.count_nonzero(grad[absent]) == 0
    counts = id_frequencies(train, feature_map, "item_id").float()
    expected = 0.01 * table.weight[ids] / counts[ids, None]
    torch.testing.assert_close(grad[ids], expected)
    # only the configured table is regularised
    cate = model.embedding_tables()["cate_id"].weight
    assert cate.grad is None or torch.count_nonzero(cate.grad) == 0


def test_difacto_penalty_has_no_frequency_scaling(prepared_dir: Path) -> None:
    _, _, model, reg, batch = _setup(prepared_dir, "difacto", {"weight": 0.001})
    weight = model.embedding_tables()["item_id"].weight.detach()
    ids = _batch_item_ids(batch)
    expected = 0.5 * 0.001 * float(weight[ids].pow(2).sum())
    assert float(reg.penalty(model, batch).detach()) == pytest.approx(expected, rel=1e-5)


def test_dense_l2_covers_every_parameter(prepared_dir: Path) -> None:
    _, _, model, reg, batch = _setup(prepared_dir, "l2", {"weight": 0.1})
    expected = 0.05 * sum(float(p.detach().pow(2).sum()) for p in model.parameters())
    assert float(reg.penalty(model, batch).detach()) == pytest.approx(expected, rel=1e-5)


def test_dropout_discards_item_ids_in_training_only(prepared_dir: Path) -> None:
    _, _, _, reg, batch = _setup(prepared_dir, "dropout", {"rate": 0.5})
    torch.manual_seed(0)
    dropped = reg.transform_batch(batch, training=True)
    valid = batch["hist_item_id"] != 0
    share = float((dropped["hist_item_id"][valid] == 0).float().mean())
    assert 0.35 < share < 0.65
    assert torch.equal(dropped["hist_cate_id"], batch["hist_cate_id"])  # other tables kept
    assert ((dropped["item_id"] == 0) | (dropped["item_id"] == batch["item_id"])).all()
    assert reg.transform_batch(batch, training=False) is batch


def test_filter_maps_rare_ids_to_oov_in_train_and_eval(prepared_dir: Path) -> None:
    feature_map, train, _, reg, batch = _setup(prepared_dir, "filter", {"top_k": 10})
    counts = id_frequencies(train, feature_map, "item_id")
    kept = set(torch.argsort(-counts, stable=True)[:10].tolist())
    for training in (True, False):
        out = reg.transform_batch(batch, training=training)
        for name in ITEM_FEATURES:
            original, mapped = batch[name], out[name]
            keep = torch.tensor([int(i) in kept or int(i) == 0 for i in original.reshape(-1)])
            assert torch.equal(mapped.reshape(-1)[keep], original.reshape(-1)[keep])
            assert (mapped.reshape(-1)[~keep] == 1).all()
    assert reg.kept == {"item_id": 10}


@pytest.mark.parametrize("name", ["none", "l2", "dropout", "filter", "difacto", "mba"])
def test_every_regularizer_trains(
    prepared_dir: Path, tmp_path: Path, fast_config: dict, name: str
) -> None:
    fast_config["train"]["epochs"] = 1
    result = fit(prepared_dir, tmp_path / name, "din", name, fast_config)
    record = result.history[0]
    assert result.regularizer == name
    assert record["train_loss"] > 0 and 0.0 <= record["valid_auc"] <= 1.0
    assert (record["train_penalty"] > 0) == (name in ("l2", "difacto", "mba"))


def test_filtered_checkpoint_scores_rare_ids_as_oov(
    prepared_dir: Path, tmp_path: Path, fast_config: dict
) -> None:
    fast_config["train"]["epochs"] = 1
    fast_config["regularizer"] = {"filter": {"top_k": 5}}
    result = fit(prepared_dir, tmp_path / "filter", "din", "filter", fast_config)
    model, feature_map, _ = load_trained_model(result.best_checkpoint)
    train = load_split(prepared_dir / "train.parquet", feature_map)
    batch = next(iterate_batches(train, 64, trim=False))
    reg = build_regularizer("filter", {"filter": {"top_k": 5}})
    reg.prepare(train, feature_map, model)
    with torch.no_grad():
        raw = model(batch)
        inner = model.model  # the model behind the id mapping
        assert torch.equal(raw, inner(reg.transform_batch(batch, training=False)))
        assert not torch.equal(raw, inner(batch))


def test_unknown_regularizer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown regularizer 'l3'.*mba"):
        build_regularizer("l3", {})


@pytest.mark.parametrize("model", ["lr", "base", "wide_deep", "pnn", "deepfm", "din", "din_dice"])
def test_every_model_trains_with_mba(
    prepared_dir: Path, tmp_path: Path, fast_config: dict, model: str
) -> None:
    fast_config["train"]["epochs"] = 1
    result = fit(prepared_dir, tmp_path / model, model, "mba", fast_config)
    assert result.history[0]["train_penalty"] > 0
    assert result.valid_metrics["gauc_users"] > 0
