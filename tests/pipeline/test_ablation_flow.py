"""A 2-model ablation: one parent MLflow run, two child runs, the comparison table."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG

pytestmark = pytest.mark.slow


def test_two_model_ablation(
    prefect_server, mlflow_store: str, movielens_100k: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flows.ablation_flow import din_ablation

    result = din_ablation(
        dataset="movielens",
        source=str(movielens_100k),
        models=["base", "din"],
        regularizers=[],
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
    assert len(runs) == 3 and len(parent) == 1
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
    markdown = Path(client.download_artifacts(result["parent_run_id"], "comparison.md")).read_text()
    assert "| din | none | 1 |" in markdown and "RelaImpr" in markdown
