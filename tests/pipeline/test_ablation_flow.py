"""The din-ablation flow: the grid, the paired ΔGAUC table, tuned configs, cells on Dask.

Fast checks (no server) build the table from real parquet files written here;
the slow ones run the flow on the real MovieLens 100K and Magazine data with
the tiny config, on a real Prefect server and MLflow store.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG

slow = pytest.mark.slow


def _children(client, parent_id: str) -> list:
    experiment_ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiment_ids)
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


# --- the grid and the table, without a server ------------------------------------------


def test_models_alone_mean_no_regularised_cells() -> None:
    from din_model.cli._main import build_parser
    from flows.ablation_flow import PAPER_REGULARIZERS, default_regularizers, grid_cells

    parser = build_parser(("din_model.cli", "flows.commands"))
    args = parser.parse_args(["ablation", "--dataset", "amazon", "--models", "base", "din"])
    assert args.regularizers is None and args.workers == 1
    regs = default_regularizers(args.models, args.regularizers)
    assert grid_cells(args.models, regs, False, "din") == [("base", "none"), ("din", "none")]
    assert grid_cells(args.models, regs, True, "din") == [("base", "none"), ("din", "none")]
    with_regs = default_regularizers(["base", "din"], ["mba"])
    assert grid_cells(["base", "din"], with_regs, False, "din")[-1] == ("din", "mba")
    assert default_regularizers(None, None) == list(PAPER_REGULARIZERS)
    legacy = parser.parse_args(["ablation", "--dataset", "amazon", "--parallel", "3"])
    assert legacy.workers == 3  # the deprecated spelling still works


def test_run_name_says_what_grid_ran() -> None:
    from flows.ablation_flow import ablation_run_name

    cells = [("base", "none"), ("din", "none"), ("din_dice", "none")]
    name = ablation_run_name(cells, [1, 2, 3], False, False)
    assert name == "ablation-base,din,din_dice-seeds1,2,3"
    assert ablation_run_name([("din", "mba")], [5], True, False) == "ablation-din+mba-seeds5-tuned"
    assert ablation_run_name(cells, [2024], False, True) == "ablation-paper-seeds2024"


def _write_predictions(path: Path, users, labels, scores) -> str:
    pl.DataFrame(
        {
            "user_id": pl.Series(users, dtype=pl.Int32),
            "label": pl.Series(labels, dtype=pl.Int8),
            "score": pl.Series(scores, dtype=pl.Float64),
        }
    ).write_parquet(path)
    return str(path)


def _fake_grid(tmp_path: Path, seeds: list[int]) -> list:
    """base (noise), din (informative) and din+mba (= din), each seed its own scores file."""
    from din_model.metrics import auc, gauc
    from tasks.comparison import CellResult

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(150), 6)
    labels = np.tile([0, 1, 0, 1, 0, 0], 150)
    results = []
    for seed in seeds:
        din = labels + 0.6 * rng.standard_normal(labels.size)
        scores = {
            ("base", "none"): rng.random(labels.size),
            ("din", "none"): din,
            ("din", "mba"): din,
        }
        for (model, reg), s in scores.items():
            p = 1 / (1 + np.exp(-s))
            path = _write_predictions(tmp_path / f"{model}-{reg}-{seed}.parquet", users, labels, p)
            results.append(
                CellResult(
                    model,
                    reg,
                    seed,
                    auc(labels, p),
                    gauc(labels, p, users)[0],
                    0.6,
                    f"r{seed}",
                    path,
                )
            )
    return results


def test_table_has_paired_intervals_markers_and_metrics(tmp_path: Path) -> None:
    from tasks.comparison import (
        comparison_markdown,
        comparison_table,
        table_metrics,
        with_significance,
    )
    from tasks.significance import paired_comparisons

    results = _fake_grid(tmp_path, [1])
    table = with_significance(comparison_table(results), paired_comparisons(results, 300, 0))
    rows = {r["cell"]: r for r in table.iter_rows(named=True)}
    din, base = rows["din"], rows["base"]
    # The paired point estimate of one seed is exactly the difference of the two GAUCs.
    assert din["vs_base_diff"] == din["gauc_mean"] - base["gauc_mean"]
    assert din["vs_base_low"] > 0  # informative scores against noise, 150 users
    assert base["vs_base_diff"] is None and base["reference"] is None
    # din+mba scored exactly as din: a zero difference against its reference, din.
    assert rows["din+mba"]["reference"] == "din"
    assert (rows["din+mba"]["vs_ref_diff"], rows["din+mba"]["vs_ref_high"]) == (0.0, 0.0)

    markdown = comparison_markdown(table)
    din_line = next(line for line in markdown.splitlines() if line.startswith("| din | none"))
    assert f"{din['gauc_mean']:.4f} ± n/a" in din_line  # one seed: no spread, not ± 0.0000
    assert din_line.rstrip().endswith("* | — |")
    mba_line = next(line for line in markdown.splitlines() if line.startswith("| din | mba"))
    assert "vs din: +0.0000 [+0.0000, +0.0000] |" in mba_line
    assert "150 test users" in markdown and "300 resamples" in markdown
    assert "averaged over the seeds" not in markdown  # one seed: no multi-seed statistic

    metrics = table_metrics(table)
    assert metrics["gauc_din_mba"] == rows["din+mba"]["gauc_mean"]
    assert metrics["gauc_diff_din_vs_base"] == din["vs_base_diff"]
    assert metrics["gauc_diff_din_vs_base_low"] == din["vs_base_low"]
    assert metrics["gauc_diff_din_mba_vs_din_high"] == 0.0
    assert "gauc_diff_base_vs_base" not in metrics and "gauc_std_din" not in metrics


def test_several_seeds_average_each_users_auc_over_seeds(tmp_path: Path) -> None:
    from tasks.comparison import comparison_markdown, comparison_table, with_significance
    from tasks.significance import paired_comparisons

    results = _fake_grid(tmp_path, [1, 2])
    table = with_significance(comparison_table(results), paired_comparisons(results, 200, 0))
    din = table.filter(pl.col("cell") == "din").row(0, named=True)
    # Point estimate: the difference of the mean GAUCs over seeds (the table's columns),
    # the same two means computed in another order: a few ulps at most.
    base = table.filter(pl.col("cell") == "base").row(0, named=True)
    assert din["vs_base_diff"] == pytest.approx(din["gauc_mean"] - base["gauc_mean"], abs=1e-12)
    markdown = comparison_markdown(table)
    assert "averaged over the seeds of each model" in markdown
    assert "± n/a" not in markdown.split("\n\n")[0]


def test_cells_scored_on_different_rows_are_not_paired(tmp_path: Path) -> None:
    from tasks.comparison import CellResult
    from tasks.significance import UnpairedPredictions, paired_comparisons

    users, labels = np.array([1, 1, 2, 2]), np.array([0, 1, 0, 1])
    first = _write_predictions(tmp_path / "a.parquet", users, labels, [0.1, 0.9, 0.2, 0.8])
    other = _write_predictions(tmp_path / "b.parquet", users[::-1], labels, [0.1, 0.9, 0.2, 0.8])
    results = [
        CellResult("base", "none", 1, 0.7, 0.7, 0.6, "a", first),
        CellResult("din", "none", 1, 0.7, 0.7, 0.6, "b", other),
    ]
    with pytest.raises(UnpairedPredictions) as failure:
        paired_comparisons(results)
    message = str(failure.value)
    assert f"{first} (base, seed 1) and {other} (din, seed 1) differ at test row 0" in message
    assert "share one data split (data_seed)" in message and "\n" not in message


def test_cells_of_dead_workers_end_failed_with_the_parents_reason(mlflow_store: str) -> None:
    from mlflow import MlflowClient

    from tasks import tracking
    from tasks.cell_runs import end_orphaned_cells
    from tasks.process_identity import PID_START_TAG, PID_TAG

    dead_pid = str(_ended_pid())
    parent = tracking.open_run("amazon", "parent", {})
    other_parent = tracking.open_run("amazon", "other", {})
    dead = tracking.open_run("amazon", "dead-cell", {}, parent)
    alive = tracking.open_run("amazon", "live-cell", {}, parent)  # this process: alive
    elsewhere = tracking.open_run("amazon", "other-cell", {}, other_parent)
    for run_id in (dead, elsewhere):
        tracking.set_tags(run_id, {PID_TAG: dead_pid, PID_START_TAG: ""})

    assert end_orphaned_cells(parent, "terminated by SIGTERM") == [dead]
    client = MlflowClient()
    ended = client.get_run(dead)
    assert ended.info.status == "FAILED"
    assert ended.data.tags["din.failure"] == "terminated by SIGTERM"
    assert client.get_run(alive).info.status == "RUNNING"
    assert client.get_run(elsewhere).info.status == "RUNNING"  # another ablation's cell


def _ended_pid() -> int:
    """The pid of a process that has exited and been reaped (a dead worker's, for the test)."""
    import subprocess

    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# --- the flow ----------------------------------------------------------------------------


@slow
def test_two_model_ablation(
    prefect_server, mlflow_store: str, movielens_100k: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flows.ablation_flow import din_ablation

    result = din_ablation(
        dataset="movielens",
        source=str(movielens_100k),
        models=["base", "din"],
        seeds=[3],
        config_file=str(TINY_CONFIG),
        max_len=PREPARE_MAX_LEN,
        work_dir=str(tmp_path / "work"),
    )
    client = MlflowClient()
    experiment = client.get_experiment_by_name("din-movielens")
    runs = client.search_runs([experiment.experiment_id])
    parent = [r for r in runs if r.info.run_id == result["parent_run_id"]]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == result["parent_run_id"]]
    # `models` alone: the two models, no regularised DIN cells.
    assert len(runs) == 3 and len(parent) == 1
    assert parent[0].info.run_name == "ablation-base,din-seeds3"
    assert sorted(r.data.tags["model"] for r in children) == ["base", "din"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert {r.info.run_id for r in children} == set(result["child_run_ids"])
    for child in children:
        assert child.data.params["train.seed"] == "3"
        assert 0.5 < child.data.metrics["test_gauc"] < 1.0

    artifacts = {a.path for a in client.list_artifacts(result["parent_run_id"])}
    assert {"comparison.csv", "comparison.md", "comparison_gauc.png"} <= artifacts
    table = pl.read_csv(client.download_artifacts(result["parent_run_id"], "comparison.csv"))
    assert table["model"].to_list() == ["base", "din"]
    by_model = {row["model"]: row for row in table.iter_rows(named=True)}
    gauc = {c.data.tags["model"]: c.data.metrics["test_gauc"] for c in children}
    assert by_model["din"]["gauc_mean"] == pytest.approx(gauc["din"])
    assert by_model["base"]["relaimpr_mean"] == pytest.approx(0.0)
    expected = ((gauc["din"] - 0.5) / (gauc["base"] - 0.5) - 1) * 100
    assert by_model["din"]["relaimpr_mean"] == pytest.approx(expected)
    # The paired ΔGAUC, recomputed from the cells' predictions.parquet, is the difference of
    # the test GAUCs the cells logged: GAUC depends on the scores' ranks only and both read
    # the same scores; what remains is the rounding of the CSV text and one subtraction.
    assert by_model["din"]["vs_base_diff"] == pytest.approx(gauc["din"] - gauc["base"], abs=1e-12)
    assert by_model["din"]["vs_base_low"] <= by_model["din"]["vs_base_high"]
    assert by_model["din"]["paired_users"] == children[0].data.metrics["test_gauc_users"]
    metrics = parent[0].data.metrics
    assert metrics["gauc_din"] == pytest.approx(gauc["din"])
    assert metrics["gauc_diff_din_vs_base"] == pytest.approx(gauc["din"] - gauc["base"], abs=1e-12)
    assert {"gauc_diff_din_vs_base_low", "gauc_diff_din_vs_base_high"} <= set(metrics)
    markdown = Path(client.download_artifacts(result["parent_run_id"], "comparison.md")).read_text()
    assert "| din | none | 1 |" in markdown and "RelaImpr" in markdown and "± n/a" in markdown
    assert "ΔGAUC vs base [95% CI]" in markdown


@pytest.fixture(scope="module")
def magazine_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work folder for the Magazine ablations: the data steps run once, then hit the cache."""
    return tmp_path_factory.mktemp("magazine-work")


@slow
def test_a_cell_on_dask_gives_the_same_metrics_as_alone(
    prefect_server, mlflow_store: str, amazon_magazine: Path, magazine_work: Path
) -> None:
    import torch
    from mlflow import MlflowClient

    from flows.ablation_flow import din_ablation
    from flows.task_runners import torch_threads_per_worker

    # Both runs use the thread count a 2-worker cluster gives each worker: the count of
    # torch threads changes how reductions are split, so it is part of "the same cell".
    threads = torch_threads_per_worker(2)
    common = {
        "dataset": "amazon",
        "source": str(amazon_magazine),
        "seeds": [5],
        "config_file": str(TINY_CONFIG),
        "overrides": [f"train.num_threads={threads}"],
        "work_dir": str(magazine_work),
    }
    grid = din_ablation(models=["base", "din"], workers=2, **common)
    before = torch.get_num_threads()
    try:
        alone = din_ablation(models=["din"], workers=1, **common)
    finally:
        torch.set_num_threads(before)  # the in-process cell set it for the whole process

    client = MlflowClient()
    in_grid = _children(client, grid["parent_run_id"])
    on_its_own = _children(client, alone["parent_run_id"])
    assert len(in_grid) == 2 and len(on_its_own) == 1
    # The grid's cells ran in Dask worker processes, and reached this test's MLflow store.
    assert all(int(c.data.tags["din.pid"]) != os.getpid() for c in in_grid)
    assert int(on_its_own[0].data.tags["din.pid"]) == os.getpid()
    din = next(c for c in in_grid if c.data.tags["model"] == "din")
    for name in ("test_auc", "test_gauc", "test_logloss"):
        # Exact: each cell is alone in its process, seeded with the same seed, trained on
        # the same prepared folder with the same config and torch thread count, so every
        # float operation is the same in the same order; MLflow stores the doubles as is.
        assert din.data.metrics[name] == on_its_own[0].data.metrics[name], name
    assert all(r.info.status == "FINISHED" for r in in_grid + on_its_own)


@slow
def test_tuned_cells_take_their_models_tuned_config(
    prefect_server, mlflow_store: str, amazon_magazine: Path, magazine_work: Path
) -> None:
    from mlflow import MlflowClient

    from din_model.config.tuned import tuned_config_path
    from din_model.errors import ConfigError
    from flows.ablation_flow import din_ablation

    common = {
        "dataset": "amazon",
        "source": str(amazon_magazine),
        "seeds": [2],
        "tuned": True,
        "work_dir": str(magazine_work),
    }
    missing = tuned_config_path(magazine_work.resolve(), "amazon", "base")
    with pytest.raises(ConfigError) as failure:
        din_ablation(models=["base"], **common)
    assert str(failure.value) == (
        f"{missing}: no tuned config for base on amazon; "
        "run `din tune --dataset amazon --model base` first"
    )
    with pytest.raises(ConfigError, match="not both"):
        din_ablation(models=["din"], config_file=str(TINY_CONFIG), **common)
    assert (
        MlflowClient().search_runs([e.experiment_id for e in MlflowClient().search_experiments()])
        == []
    )  # both failed before opening any run

    tuned = tuned_config_path(magazine_work.resolve(), "amazon", "din")
    tuned.parent.mkdir(parents=True, exist_ok=True)
    tuned.write_text(TINY_CONFIG.read_text() + "  learning_rate: 0.0123\n")  # under train:
    result = din_ablation(
        models=["din"], regularizers=["mba"], overrides=["model.embedding_dim=4"], **common
    )
    children = _children(MlflowClient(), result["parent_run_id"])
    assert sorted(c.data.tags["regularizer"] for c in children) == ["mba", "none"]
    for child in children:
        assert child.data.params["train.learning_rate"] == "0.0123"  # from the tuned file
        assert child.data.params["model.embedding_dim"] == "4"  # --set on top of it
        assert child.data.tags["config_file"] == str(tuned)
    parent = MlflowClient().get_run(result["parent_run_id"])
    assert parent.info.run_name == "ablation-din,din+mba-seeds2-tuned"
    assert parent.data.tags["tuned"] == "true"
