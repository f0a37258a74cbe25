"""End to end: din-train on real MovieLens 100K through Prefect and a real MLflow store.

One module-scoped run (one short epoch, tiny model) feeds several tests: the
MLflow run, its metrics, tags and artifacts, the registered pyfunc model,
the champion rule, caching, and ``din rerun``.
"""

from __future__ import annotations

import json
import time
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


def test_run_names_say_dataset_source_model_regularizer_and_seed(
    first_run: dict[str, Any], movielens_copy: Path
) -> None:
    """The MLflow run and its Prefect flow run carry the same telling name."""
    from prefect import get_client

    from tasks.run_names import run_name

    label = movielens_copy.name  # a folder of the owner's files: labelled by its name
    run = mlflow_run(first_run["run_id"])
    day = run.info.run_name.rsplit(":", 1)[-1]  # the UTC day the run started
    assert len(day) == 10 and time.strptime(day, "%Y-%m-%d")
    # `din run` / a direct call is a manual trigger
    expected = run_name("movielens", label, "din", "none", 7, trigger="manual", date=day)
    assert run.info.run_name == expected
    assert run.data.tags["source_label"] == label
    for part in ("movielens", label, "din+none", "seed7"):
        assert part in expected.split(":"), (part, expected)
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(uuid.UUID(first_run["flow_run_id"]))
    assert flow_run.name == expected


def test_the_three_splits_are_the_runs_dataset_inputs(first_run: dict[str, Any]) -> None:
    """train/valid/test with their context, and the split's prepared fingerprint as digest."""
    from din_model.data.specs.feature_map import FEATURE_MAP_FILE
    from din_model.io.fingerprint import fingerprint_files

    prepared = Path(first_run["prepared_dir"])
    report = json.loads((prepared / "prepare_report.json").read_text())
    inputs = mlflow_run(first_run["run_id"]).inputs.dataset_inputs
    found = {i.dataset.name: i for i in inputs}
    assert sorted(found) == ["movielens-test", "movielens-train", "movielens-valid"]
    for split, context in (("train", "training"), ("valid", "validation"), ("test", "testing")):
        entry = found[f"movielens-{split}"]
        assert {t.key: t.value for t in entry.tags} == {"mlflow.data.context": context}
        # the same files and formula training records as its prepared fingerprint
        fingerprint = fingerprint_files(
            [prepared / FEATURE_MAP_FILE, prepared / f"{split}.parquet"], root=prepared
        )
        dataset = entry.dataset
        assert dataset.digest == fingerprint.removeprefix("sha256:")[:12]
        profile = json.loads(dataset.profile)
        assert profile["split_fingerprint"] == fingerprint
        assert profile["data_fingerprint"] == first_run["data_fingerprint"]
        assert profile["num_rows"] == report["samples"][split]
        assert json.loads(dataset.source) == {"uri": (prepared / f"{split}.parquet").as_uri()}
        columns = [c["name"] for c in json.loads(dataset.schema)["mlflow_colspec"]]
        assert columns == pl.read_parquet_schema(prepared / f"{split}.parquet").names()


def test_experiments_are_marked_model_training_new_and_existing(
    first_run: dict[str, Any],
) -> None:
    from mlflow import MlflowClient

    from tasks.store import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, ensure_experiment

    client = MlflowClient()
    created = client.get_experiment(mlflow_run(first_run["run_id"]).info.experiment_id)
    assert created.tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND == "custom_model_development"
    # an experiment made before this tag existed (or flipped to GenAI) is marked on next use
    dataset = f"probe-{uuid.uuid4().hex[:8]}"
    old = client.create_experiment(
        f"din-{dataset}", tags={EXPERIMENT_KIND_TAG: "genai_development"}
    )
    assert ensure_experiment(dataset) == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND
    untagged = client.create_experiment(f"din-{dataset}-untagged")
    assert ensure_experiment(f"{dataset}-untagged") == untagged
    assert client.get_experiment(untagged).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND


def test_registered_model_and_each_version_are_described(
    first_run: dict[str, Any], worse_run: dict[str, Any], movielens_copy: Path
) -> None:
    from mlflow import MlflowClient

    from tasks.registry import README_SERVING

    client = MlflowClient()
    model = client.get_registered_model("din-movielens").description
    assert "models:/din-movielens@champion" in model
    assert README_SERVING in model
    for column in ("age", "gender", "occupation", "item_id", "timestamp", "history_item_id"):
        assert f"- `{column}`:" in model, (column, model)
    assert "- `user_id`: optional" in model  # in the example rows, not a model input

    for summary in (first_run, worse_run):
        version = client.get_model_version("din-movielens", summary["registry"]["version"])
        text = version.description
        for part in (
            "`din` with regulariser `none`",
            f"`movielens` data `{movielens_copy.name}`",
            f"`{summary['data_fingerprint']}`",
            f"Validation GAUC {summary['valid']['gauc']:.4f}",
            f"test GAUC {summary['test']['gauc']:.4f}",
            f"Run `{summary['run_id']}`",
        ):
            assert part in text, (part, text)


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
    # the config as trained is the run folder's own file, rules resolved at fit time
    trained = Path(MlflowClient().download_artifacts(run_id, "trained/config.yaml"))
    assert trained.read_text() == (Path(first_run["run_dir"]) / "config.yaml").read_text()


#: Parity bound between the run's test scores and the served model's: the same float32
#: network on the same ids; only the batch composition differs (training scored in
#: batches of eval_batch_size, the pyfunc in its own chunks), which can change the
#: summation order of a matrix product and so the last bits of a float32 logit
#: (relative 2^-24 ~ 6e-8 per rounding, a few roundings deep), far below 1e-6 once
#: the sigmoid (slope <= 1/4) maps it to a probability.
PARITY = 1e-6


def test_registered_model_scores_raw_requests_like_training(first_run: dict[str, Any]) -> None:
    """Every test row, sent raw (owner ids, timestamp, history) through the registered model."""
    import mlflow

    from din_model.data.adapters import ingest
    from din_model.pipeline.prepare import raw_samples

    assert first_run["registry"]["registered_model"] == "din-movielens"
    assert first_run["registry"]["promoted"] is True
    model = mlflow.pyfunc.load_model("models:/din-movielens@champion")

    data = ingest("movielens", first_run["source"])
    raw = raw_samples(data, seed=7, max_len=PREPARE_MAX_LEN, split="test")
    expected = pl.read_parquet(Path(first_run["run_dir"]) / "predictions.parquet")
    assert raw["label"].to_list() == expected["label"].to_list()  # row i is row i
    scores = model.predict(raw.drop("label").to_pandas())
    report = json.loads((Path(first_run["prepared_dir"]) / "prepare_report.json").read_text())
    assert len(scores) == expected.height == report["samples"]["test"]  # every test row
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), rtol=0, atol=PARITY)

    # raw ids as integers are the same items (never vocabulary indices); categories
    # looked up by the model or given by the client agree
    rows = raw.head(3).drop("label").to_pandas()
    as_ints = rows.assign(
        item_id=rows["item_id"].astype(int),
        history_item_id=[[int(i) for i in h] for h in rows["history_item_id"]],
    )
    from din_model.serving.raw_scorer import RawScorer

    scorer = RawScorer.from_checkpoint(Path(first_run["run_dir"]) / "checkpoints" / "best.pt",
                       Path(first_run["run_dir"]) / "serving")  # fmt: skip
    np.testing.assert_allclose(scorer.score(as_ints), scores[:3], rtol=0, atol=PARITY)

    # histories longer than max_len keep their most recent events; empty ones are valid
    long = rows.head(1).copy()
    history = [str(i) for i in range(1, 3 * PREPARE_MAX_LEN)]
    long["history_item_id"] = [history]
    recent = long.assign(history_item_id=[history[-PREPARE_MAX_LEN:]])
    assert model.predict(long)[0] == pytest.approx(model.predict(recent)[0], abs=PARITY)
    empty = rows.head(1).assign(history_item_id=[[]])
    assert 0 < model.predict(empty)[0] < 1


def test_bad_requests_name_the_column(first_run: dict[str, Any]) -> None:
    from din_model.serving.raw_encoder import InputError
    from din_model.serving.raw_scorer import RawScorer

    run_dir = Path(first_run["run_dir"])
    scorer = RawScorer.from_checkpoint(run_dir / "checkpoints" / "best.pt", run_dir / "serving")
    good = {
        "age": ["24"],
        "gender": ["M"],
        "occupation": ["technician"],
        "item_id": ["50"],
        "timestamp": [881250949],
        "history_item_id": [["1", "2"]],
    }
    assert scorer.score(good).shape == (1,)
    with pytest.raises(InputError, match="missing column.*history_item_id"):
        scorer.score({k: v for k, v in good.items() if k != "history_item_id"})
    with pytest.raises(InputError, match="'history_item_id': expected a list"):
        scorer.score({**good, "history_item_id": ["1 2"]})
    with pytest.raises(InputError, match="'timestamp': expected unix seconds"):
        scorer.score({**good, "timestamp": ["yesterday"]})
    with pytest.raises(InputError, match="'item_id': expected ids"):
        scorer.score({**good, "item_id": [50.5]})


def test_ranking_encodes_the_history_once_and_matches_row_scoring(
    first_run: dict[str, Any],
) -> None:
    from din_model.serving.raw_scorer import RawScorer

    run_dir = Path(first_run["run_dir"])
    scorer = RawScorer.from_checkpoint(run_dir / "checkpoints" / "best.pt", run_dir / "serving")
    user = {"age": "24", "gender": "M", "occupation": "technician", "timestamp": 881250949,
            "history_item_id": ["1", "2", "3"]}  # fmt: skip
    candidates = ["50", "172", "181", "unknown-item"]
    ranked = scorer.rank(user, candidates)
    rows = pl.DataFrame([{**user, "item_id": c} for c in candidates])
    np.testing.assert_allclose(ranked, scorer.score(rows), rtol=0, atol=PARITY)


def test_worse_run_is_not_promoted(first_run: dict[str, Any], worse_run: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    assert worse_run["registry"]["promoted"] is False
    tags = mlflow_run(worse_run["run_id"]).data.tags
    assert tags["champion_promoted"] == "false"
    # judged head to head with the champion on the same test rows, through both
    # registered models: a model that did not learn cannot show a GAUC gain
    assert tags["champion_rule"] == "keep"
    assert tags["h2h_slice"] == "test split"
    assert "the GAUC interval does not lie above" in tags["not_promoted_reason"]
    assert float(tags["challenger_gauc"]) < float(tags["champion_gauc"])
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
