"""End to end: din-train on real MovieLens 100K through Prefect and a real MLflow store.

One module-scoped run (one short epoch, tiny model) feeds several tests: the
MLflow run, its metrics, tags and artifacts, the registered pyfunc model,
the champion rule, caching, and ``din rerun``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from _pipeline_support import PREPARE_MAX_LEN, TINY_CONFIG, copy_movielens

pytestmark = pytest.mark.slow


def run_train(source: Path, work: Path, **kwargs: Any) -> dict[str, Any]:
    from flows.train_flow import din_train

    params: dict[str, Any] = {
        "dataset": "movielens",
        "source": str(source),
        "model": "din",
        "config_file": str(TINY_CONFIG),
        "max_len": PREPARE_MAX_LEN,
        "seed": 7,
        "work_dir": str(work),
    }
    params.update(kwargs)
    return din_train(**params)


@pytest.fixture(scope="module")
def movielens_copy(movielens_100k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_movielens(movielens_100k, tmp_path_factory.mktemp("ml-100k"))


@pytest.fixture(scope="module")
def module_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def first_run(prefect_server, module_store: str, movielens_copy: Path, module_work: Path):
    return run_train(movielens_copy, module_work)


@pytest.fixture(scope="module")
def worse_run(first_run: dict[str, Any], movielens_copy: Path, module_work: Path):
    """Same data, learning rate 1e-9: the model does not learn, so it cannot beat the champion."""
    return run_train(movielens_copy, module_work, overrides=["train.learning_rate=1.0e-9"])


def mlflow_run(run_id: str):
    from mlflow import MlflowClient

    return MlflowClient().get_run(run_id)


def artifact_paths(run_id: str, path: str | None = None) -> set[str]:
    from mlflow import MlflowClient

    client = MlflowClient()
    found = set()
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            found |= artifact_paths(run_id, item.path) | {item.path + "/"}
        else:
            found.add(item.path)
    return found


def test_run_metrics_params_and_tags(first_run: dict[str, Any], module_store: str) -> None:
    from mlflow import MlflowClient

    run = mlflow_run(first_run["run_id"])
    assert run.info.status == "FINISHED"
    experiment = MlflowClient().get_experiment(run.info.experiment_id)
    assert experiment.name == "din-movielens"
    assert experiment.artifact_location.startswith(
        Path(module_store[len("sqlite:///") :]).parent.as_uri()
    )

    metrics = run.data.metrics
    for key in ("test_auc", "test_gauc", "test_logloss", "best_valid_gauc", "best_epoch"):
        assert key in metrics, key
    assert 0.6 < metrics["test_gauc"] < 1.0  # learned something in one epoch
    assert metrics["test_auc"] == pytest.approx(first_run["test"]["auc"])
    history = MlflowClient().get_metric_history(run.info.run_id, "valid_gauc")
    assert [m.step for m in history] == [1]  # one epoch, logged at step=epoch
    assert MlflowClient().get_metric_history(run.info.run_id, "train_loss")[0].value > 0

    params = run.data.params
    assert params["model.embedding_dim"] == "8"
    assert params["train.epochs"] == "1"
    assert params["train.seed"] == "7"
    assert params["regularizer.name"] == "none"
    assert params["pipeline.dataset"] == "movielens"

    tags = run.data.tags
    assert len(tags["git_commit"]) in (40, len("unknown"))
    assert tags["git_dirty"] in ("true", "false", "unknown")
    assert tags["data_fingerprint"].startswith("sha256:")
    assert tags["data_source"] == "real"
    assert tags["seed"] == "7"
    uuid.UUID(tags["prefect_flow_run_id"])
    assert tags["prefect_flow_run_id"] == first_run["flow_run_id"]
    assert tags["champion_promoted"] == "true"


def test_flow_run_is_recorded_in_prefect(first_run: dict[str, Any]) -> None:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(uuid.UUID(first_run["flow_run_id"]))
    assert flow_run.state.is_completed()
    assert flow_run.parameters["dataset"] == "movielens"


def test_run_artifacts(first_run: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    run_id = first_run["run_id"]
    found = artifact_paths(run_id)
    for expected in (
        "config.yaml",
        "feature_map.json",
        "validation.json",
        "prepare_report.json",
        "data_manifest.json",
        "history.json",
        "plots/roc.png",
        "plots/calibration.png",
        "plots/attention.png",  # a DIN run: the Fig. 5-style weights
        "test_predictions_sample.csv",
    ):
        assert expected in found, (expected, sorted(found))
    local = Path(MlflowClient().download_artifacts(run_id, "test_predictions_sample.csv"))
    sample = pl.read_csv(local)
    assert sample.columns == ["user_id", "label", "score"]
    assert 0 < sample.height <= 1000
    png = Path(MlflowClient().download_artifacts(run_id, "plots/roc.png")).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    config = Path(MlflowClient().download_artifacts(run_id, "config.yaml")).read_text()
    assert "embedding_dim: 8" in config


def test_registered_model_scores_histories_of_any_length(first_run: dict[str, Any]) -> None:
    import mlflow

    assert first_run["registry"]["registered_model"] == "din-movielens"
    assert first_run["registry"]["promoted"] is True
    model = mlflow.pyfunc.load_model("models:/din-movielens@champion")

    prepared = Path(first_run["prepared_dir"])
    test = pl.read_parquet(prepared / "test.parquet").head(200).to_pandas()
    scores = model.predict(test)
    expected = pl.read_parquet(Path(first_run["run_dir"]) / "predictions.parquet").head(200)
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), rtol=1e-5, atol=1e-7)

    # histories of different lengths, longer than max_len, empty, and as plain lists
    rows = test.head(4).copy()
    long = [int(i) for i in rows.loc[0, "hist_item_id"]] * 10
    long_cates = [int(i) for i in rows.loc[0, "hist_cate_id"]] * 10
    rows["hist_item_id"] = [long, [int(rows.loc[1, "item_id"])], [], [3, 4, 5]]
    rows["hist_cate_id"] = [long_cates, [int(rows.loc[1, "cate_id"])], [], [2, 2, 2]]
    varied = model.predict(rows)
    assert varied.shape == (4,)
    assert np.all((varied > 0) & (varied < 1))
    # keeping the last max_len events: a long history scores like its most recent part
    recent = rows.head(1).copy()
    recent["hist_item_id"] = [long[-PREPARE_MAX_LEN:]]
    recent["hist_cate_id"] = [long_cates[-PREPARE_MAX_LEN:]]
    assert model.predict(recent)[0] == pytest.approx(varied[0], abs=1e-6)  # float32 math


def test_worse_run_is_not_promoted(first_run: dict[str, Any], worse_run: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    assert worse_run["registry"]["promoted"] is False
    tags = mlflow_run(worse_run["run_id"]).data.tags
    assert tags["champion_promoted"] == "false"
    assert "does not beat champion v1" in tags["not_promoted_reason"]
    champion = MlflowClient().get_model_version_by_alias("din-movielens", "champion")
    assert str(champion.version) == "1"
    assert champion.run_id == first_run["run_id"]
    assert worse_run["registry"]["version"] == "2"
    assert worse_run["valid"]["gauc"] < first_run["valid"]["gauc"]


def test_second_run_on_unchanged_data_skips_ingestion(
    first_run: dict[str, Any], worse_run: dict[str, Any]
) -> None:
    assert first_run["cached"] == {"ingest": False, "prepare": False}
    assert worse_run["cached"] == {"ingest": True, "prepare": True}
    assert worse_run["data_fingerprint"] == first_run["data_fingerprint"]
    assert mlflow_run(worse_run["run_id"]).data.tags["ingest_cached"] == "true"


def test_rerun_reproduces_then_refuses_changed_data(
    first_run: dict[str, Any],
    worse_run: dict[str, Any],
    movielens_copy: Path,
    module_work: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from flows.cli import main

    code = main(["rerun", first_run["run_id"], "--work-dir", str(module_work)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "reproduced" in out
    reruns = _runs_tagged("rerun_of", first_run["run_id"])
    assert len(reruns) == 1
    rerun = reruns[0]
    assert rerun.data.tags["ingest_cached"] == "false"  # re-executed from the raw files
    for key in ("test_auc", "test_gauc", "test_logloss"):
        assert rerun.data.metrics[key] == first_run["test"][key.removeprefix("test_")]

    ratings = movielens_copy / "u.data"
    lines = ratings.read_text().splitlines()
    user, item, rating, ts = lines[0].split("\t")
    lines[0] = "\t".join([user, item, "5" if rating != "5" else "4", ts])
    ratings.write_text("\n".join(lines) + "\n")

    code = main(["rerun", first_run["run_id"], "--work-dir", str(module_work)])
    captured = capsys.readouterr()
    assert code == 2
    assert "refusing to rerun" in captured.err
    assert "changed: u.data" in captured.err
    assert len(_runs_tagged("rerun_of", first_run["run_id"])) == 1  # nothing was run


def _runs_tagged(key: str, value: str) -> list:
    import mlflow

    experiment = mlflow.get_experiment_by_name("din-movielens")
    return mlflow.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{key} = '{value}'",
        output_format="list",
    )
