"""Warm start on real data: two Magazine_Subscriptions runs whose vocabularies differ.

The champion trains on the reviews of two thirds of the items, the challenger on
three quarters of them (half shared), so the item ids of the two runs are different
indices of different vocabularies: a copy by index instead of by raw value fails the
row checks below (the fixture asserts that shared items have different ids).
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import logging
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from din_model.config import resolve_config
from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import DataError
from din_model.models import build_model
from din_model.pipeline.prepare import prepare_dataset
from din_model.pipeline.run import fit, fit_and_score
from din_model.training.checkpoint import load_checkpoint
from din_model.training.seed import seed_everything
from din_model.training.warm_start import WarmStartSource, warm_start

REVIEWS = "Magazine_Subscriptions_5.json.gz"
META = "meta_Magazine_Subscriptions.json.gz"
TINY = yaml.safe_load((Path(__file__).parents[1] / "pipeline" / "tiny.yaml").read_text())
TINY["train"]["num_threads"] = 1  # 2 busy cores: one thread avoids spin-waiting


def _config(**train: object) -> dict:
    config = copy.deepcopy(TINY)
    config["train"].update(train)
    return config


def _subset(source: Path, out: Path, every: int) -> Path:
    """The reviews of every item but each ``every``-th (by sorted asin, starting at 0).

    Different periods for the two runs, so that the shared items' ranks (their ids)
    differ between the runs (with the same period they would keep the same rank).
    """
    with gzip.open(source / REVIEWS, "rt") as handle:
        lines = handle.readlines()
    asins = sorted({json.loads(line)["asin"] for line in lines})
    dropped = {asin for i, asin in enumerate(asins) if i % every == 0}
    out.mkdir(parents=True)
    with gzip.open(out / REVIEWS, "wt") as handle:
        handle.writelines(line for line in lines if json.loads(line)["asin"] not in dropped)
    (out / META).symlink_to(source / META)
    return out


def _vocab(prepared: Path, table: str) -> dict[str, int]:
    frame = pl.read_parquet(prepared / "vocab" / f"{table}.parquet")
    return dict(zip(frame["raw"].cast(pl.String).to_list(), frame["id"].to_list(), strict=True))


@pytest.fixture(scope="module")
def runs(amazon_magazine: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("warm_start")
    paths = {}
    for name, every in (("champion", 3), ("challenger", 4)):
        paths[f"{name}_raw"] = source = _subset(amazon_magazine, root / f"{name}_raw", every)
        paths[name] = root / f"{name}_prepared"
        prepare_dataset("amazon", source, paths[name], seed=42)
    fit_and_score(paths["champion"], root / "champion_run", "din", config=_config())
    paths["checkpoint"] = root / "champion_run" / "checkpoints" / "best.pt"
    # the premise of every test: shared items sit at different rows in the two runs
    mine, theirs = _vocab(paths["challenger"], "item_id"), _vocab(paths["champion"], "item_id")
    shared = mine.keys() & theirs.keys()
    assert shared and mine.keys() - theirs.keys()
    assert any(mine[v] != theirs[v] for v in shared)
    return paths


def _fresh(prepared: Path, model: str = "din", config: dict | None = None):
    """A challenger model as TrainingRun builds it: seeded, before any epoch."""
    feature_map = FeatureMap.load(prepared)
    resolved = resolve_config(model, feature_map.dataset, layers=[config or _config()])
    seed_everything(int(resolved["train"]["seed"]))
    return feature_map, build_model(model, feature_map, resolved["model"])


def _snapshot(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in net.state_dict().items()}


def test_shared_values_get_the_champions_rows(runs: dict[str, Path]) -> None:
    feature_map, net = _fresh(runs["challenger"])
    before = _snapshot(net)
    report = warm_start(net, feature_map, WarmStartSource(runs["checkpoint"]),
                        vocab_dir=runs["challenger"] / "vocab")  # fmt: skip
    champion = load_checkpoint(runs["checkpoint"])["model_state"]
    after = net.state_dict()
    tables = {f"embedding.tables.{t}.weight": t for t in feature_map.tables}
    for name, table in tables.items():
        mine, theirs = _vocab(runs["challenger"], table), _vocab(runs["champion"], table)
        shared = mine.keys() & theirs.keys()
        assert report.tables[table] == {
            "copied": len(shared), "challenger": len(mine), "champion": len(theirs)
        }  # fmt: skip
        for value in shared:
            assert torch.equal(after[name][mine[value]], champion[name][theirs[value]]), value
        untouched = set(range(after[name].shape[0])) - {mine[v] for v in shared}
        assert {0, 1} <= untouched  # padding and OOV are never copied
        for row in untouched:
            assert torch.equal(after[name][row], before[name][row]), (table, row)
    others = [name for name in after if name not in tables]
    assert others
    for name in others:
        assert torch.equal(after[name], champion[name]), name
    assert sorted(report.copied) == sorted(after)
    assert report.skipped == {}


def test_a_layer_of_another_shape_is_skipped_and_listed(runs: dict[str, Path]) -> None:
    config = _config()
    config["model"]["mlp_hidden"] = [8]  # the champion's is [16]
    feature_map, net = _fresh(runs["challenger"], config=config)
    before = _snapshot(net)
    report = warm_start(net, feature_map, WarmStartSource(runs["checkpoint"]),
                        vocab_dir=runs["challenger"] / "vocab")  # fmt: skip
    champion = load_checkpoint(runs["checkpoint"])["model_state"]
    after = net.state_dict()
    layers = {n: t for n, t in after.items() if not n.startswith("embedding.tables.")}
    differing = {n for n, t in layers.items() if champion[n].shape != t.shape}
    assert differing and set(report.skipped) == differing
    for name in differing:
        assert "shape" in report.skipped[name]
        assert torch.equal(after[name], before[name])
    assert report.tables["item_id"]["copied"] > 0
    assert set(report.copied) == set(after) - differing


def test_a_champion_of_another_model_copies_nothing(runs: dict[str, Path]) -> None:
    feature_map, net = _fresh(runs["challenger"], model="base")
    before = _snapshot(net)
    report = warm_start(net, feature_map, WarmStartSource(runs["checkpoint"]),
                        vocab_dir=runs["challenger"] / "vocab")  # fmt: skip
    assert report.copied == [] and report.tables == {}
    assert set(report.skipped) == set(before)
    assert all("champion is a din model" in why for why in report.skipped.values())
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, before[name])


def test_missing_champion_vocabularies_name_the_file(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    feature_map, net = _fresh(runs["challenger"])
    with pytest.raises(DataError, match=r"vocab/\w+\.parquet.*champion's vocabularies"):
        warm_start(net, feature_map, WarmStartSource(runs["checkpoint"], serving=tmp_path),
                   vocab_dir=runs["challenger"] / "vocab")  # fmt: skip
    # the challenger's prepared folder is no stand-in: its vocabulary sizes differ
    with pytest.raises(DataError, match="a vocabulary of another run"):
        warm_start(net, feature_map, WarmStartSource(runs["checkpoint"], runs["challenger"]),
                   vocab_dir=runs["challenger"] / "vocab")  # fmt: skip


class _Killed(Exception):
    pass


def _kill_after_epoch_1(record: dict) -> None:
    if record["epoch"] == 1:
        raise _Killed


def test_fit_records_the_warm_start_and_resuming_does_not_repeat_it(
    runs: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = WarmStartSource(runs["checkpoint"])
    config = _config(epochs=2)
    with caplog.at_level(logging.INFO, logger="din_model"):
        whole = fit_and_score(runs["challenger"], tmp_path / "whole", "din", config=config,
                              warm_start_from=source)  # fmt: skip
    recorded = json.loads(whole.metrics_path.read_text())["warm_start"]
    assert recorded["checkpoint"] == str(runs["checkpoint"])
    items = recorded["tables"]["item_id"]
    assert items["copied"] > 0
    line = f"warm start: item_id {items['copied']:,} of {items['challenger']:,} rows from the "
    assert any(r.getMessage().startswith(line) for r in caplog.records)
    assert "warm start:" in whole.config_path.read_text()
    assert "warm_start" not in whole.fit.config["train"]  # the config (and its hash) as cold

    killed = tmp_path / "killed"
    with pytest.raises(_Killed):
        fit(runs["challenger"], killed, "din", config=config, warm_start_from=source,
            on_epoch_end=_kill_after_epoch_1)  # fmt: skip
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="din_model"):
        resumed = fit(runs["challenger"], killed, "din", config=config, warm_start_from=source)
    assert resumed.resumed_from_epoch == 1
    assert not any(r.getMessage().startswith("warm start: item_id") for r in caplog.records)
    assert resumed.warm_start == recorded  # restored from the checkpoint
    # re-applying the champion's rows after the restore would change epoch 2's weights
    final = load_checkpoint(resumed.last_checkpoint)["model_state"]
    reference = load_checkpoint(whole.fit.last_checkpoint)["model_state"]
    for name, tensor in reference.items():
        assert torch.equal(final[name], tensor), name


def test_hashed_tables_map_by_the_hash_only_when_both_hash_alike(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    prepared = tmp_path / "hashed_prepared"
    prepare_dataset("amazon", runs["champion_raw"], prepared, seed=42, hash_buckets={"item": 64})
    champion_fit = fit(prepared, tmp_path / "hashed_run", "din", config=_config())
    source = WarmStartSource(champion_fit.best_checkpoint, serving=prepared)
    champion = load_checkpoint(source.checkpoint)["model_state"]
    hashed_spec = FeatureMap.load(prepared).tables["item_id"]
    name = "embedding.tables.item_id.weight"

    # learned here, hashed there: rows mean different values
    feature_map, net = _fresh(runs["challenger"])
    report = warm_start(net, feature_map, source, vocab_dir=runs["challenger"] / "vocab")
    assert "hashed in the champion only" in report.skipped[name]
    assert "item_id" not in report.tables and report.tables["cate_id"]["copied"] > 0

    # hashed alike: a bucket holds the same values in both runs, every bucket row is copied
    challenger_map = FeatureMap.load(runs["challenger"])
    challenger_map.tables["item_id"] = hashed_spec
    seed_everything(0)
    net = build_model("din", challenger_map, _config()["model"])
    before = _snapshot(net)
    report = warm_start(net, challenger_map, source, vocab_dir=runs["challenger"] / "vocab")
    assert report.tables["item_id"] == {"copied": 64, "challenger": 64, "champion": 64}
    after = net.state_dict()[name]
    assert torch.equal(after[2:], champion[name][2:])
    assert torch.equal(after[:2], before[name][:2])

    # another hash seed: skipped and listed, the rows stay as initialised
    challenger_map.tables["item_id"] = dataclasses.replace(hashed_spec, hash_seed=1)
    seed_everything(0)
    net = build_model("din", challenger_map, _config()["model"])
    before = _snapshot(net)
    report = warm_start(net, challenger_map, source, vocab_dir=runs["challenger"] / "vocab")
    assert "hashed with (buckets, function, seed)" in report.skipped[name]
    assert torch.equal(net.state_dict()[name], before[name])
