"""Batch scoring through the registry: the din-score flow, its deployment and ``din score``.

A real ``din-train`` run on Amazon Magazine_Subscriptions registers ``din-amazon``
(champion v1); a file of its raw test rows is then scored by the din-score flow
(in-process, and as a deployment run under configured roots) and by the ``din score``
command in a subprocess, each resolving the model in MLflow. Every way gives the scores
of in-process scoring with the run's checkpoint (``RawScorer``), to 1e-6 (the argument
is in tests/serving/test_batch_scoring.py: same float32 network, other batch
composition).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tasks.allowed_paths import PathNotAllowed

PARITY = 1e-6
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rows(magazine_raw_test: pl.DataFrame) -> pl.DataFrame:
    """The shared Magazine run's raw test rows (conftest), without the label."""
    return magazine_raw_test.drop("label")


@pytest.fixture(scope="module")
def in_process(magazine_run: dict[str, Any], rows: pl.DataFrame) -> np.ndarray:
    """Scores of the rows by the run's own checkpoint and serving tables, no MLflow."""
    from din_model.serving.raw_scorer import RawScorer

    run_dir = Path(magazine_run["run_dir"])
    scorer = RawScorer.from_checkpoint(run_dir / "checkpoints" / "best.pt", run_dir / "serving")
    scores = scorer.score(rows)
    training = pl.read_parquet(run_dir / "predictions.parquet")["score"].to_numpy()
    np.testing.assert_allclose(scores, training, rtol=0, atol=PARITY)
    return scores


@pytest.mark.slow
def test_the_flow_scores_a_file_with_the_champion(
    magazine_run: dict[str, Any], rows: pl.DataFrame, in_process: np.ndarray, tmp_path: Path
) -> None:
    from flows.score_flow import din_score

    source = tmp_path / "rows.parquet"
    rows.write_parquet(source)
    out = tmp_path / "scored.parquet"
    summary = din_score(input=str(source), out=str(out), dataset="amazon")
    assert summary["model"] == "models:/din-amazon/1" and summary["model_version"] == "1"
    assert (summary["rows"], summary["scored"], summary["skipped"]) == (696, 696, 0)
    scored = pl.read_parquet(out)
    assert scored.drop("score").equals(rows)
    np.testing.assert_allclose(scored["score"].to_numpy(), in_process, rtol=0, atol=PARITY)

    # the run id names the same model; a broken row is set aside with on_bad_lines=skip
    broken = rows.with_columns(rows["timestamp"].scatter(0, None))
    broken.write_parquet(source)
    summary = din_score(
        input=str(source),
        out=str(out),
        model=magazine_run["run_id"],
        on_bad_lines="skip",
        force=True,
    )
    assert summary["model"] == f"runs:/{magazine_run['run_id']}/model"
    assert (summary["scored"], summary["skipped"]) == (695, 1)
    assert pl.read_ndjson(summary["rejects"])["row"].to_list() == [1]
    np.testing.assert_allclose(
        pl.read_parquet(out)["score"].to_numpy(), in_process[1:], rtol=0, atol=PARITY
    )


def din(*argv: str, store: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MLFLOW_TRACKING_URI=store)
    return subprocess.run(
        [str(BIN / "din"), "score", *argv],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_din_score_resolves_the_champion_in_mlflow(
    module_store: str,
    magazine_run: dict[str, Any],
    rows: pl.DataFrame,
    in_process: np.ndarray,
    tmp_path: Path,
) -> None:
    source = tmp_path / "rows.csv"
    rows.with_columns(pl.col("history_item_id").list.join(" ")).write_csv(source)
    out = tmp_path / "scored.jsonl"
    model = "models:/din-amazon@champion"
    done = din("--model", model, "--input", str(source), "--out", str(out), store=module_store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"din score: din-amazon v1 ({model}, run {magazine_run['run_id']})" in done.stdout
    assert "scored 696 of 696 rows" in done.stdout
    scores = pl.read_ndjson(out)["score"].to_numpy()
    np.testing.assert_allclose(scores, in_process, rtol=0, atol=PARITY)

    again = din(
        "--dataset", "amazon", "--input", str(source), "--out", str(out), store=module_store
    )
    assert again.returncode == 2
    assert again.stderr.strip().endswith(
        "exists; pass --force to replace it, or choose another file"
    )
    for argv, message in [
        (["--model", "models:/din-amazon@nope"], "Registered model alias nope not found"),
        (["--model", "not-a-model"], "expected models:/<name>@<alias>"),
        ([], "pass --model, or --dataset"),
    ]:
        failed = din(
            *argv, "--input", str(source), "--out", str(tmp_path / "x.csv"), store=module_store
        )
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.startswith("din score: error: ") and message in failed.stderr
        assert "Traceback" not in failed.stderr and not (tmp_path / "x.csv").exists()


def test_every_dataset_has_a_score_deployment() -> None:
    from din_model.registry import dataset_names
    from flows.deployments import build_deployments

    deployments = build_deployments()
    named = {(d.flow_name, d.name): d for d in deployments}
    assert deployments[0].flow_name == "din-train"  # din-train's first, as before
    for dataset in dataset_names():
        assert ("din-train", dataset) in named
        score = named[("din-score", dataset)]
        assert not score.schedules  # on demand only
        assert score.parameters == {
            "dataset": dataset,
            "model": f"models:/din-{dataset}@champion",
        }
        assert score.entrypoint == "flows.score_flow.din_score"


@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    data, work, outside = tmp_path / "data-root", tmp_path / "work-root", tmp_path / "outside"
    for folder in (data, work, outside):
        folder.mkdir()
    monkeypatch.setenv("DIN_DATA_ROOTS", str(data))
    monkeypatch.setenv("DIN_WORK_DIR", str(work))
    return {"data": data, "work": work, "outside": outside}


def test_deployment_runs_score_only_under_the_roots(
    roots: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.scoring

    monkeypatch.setattr(tasks.scoring, "running_from_deployment", lambda: True)
    data, work, outside = roots["data"], roots["work"], roots["outside"]
    tasks.scoring.guard_score_paths(str(data / "in.csv"), str(work / "o.csv"), str(data / "raw"))
    tasks.scoring.guard_score_paths(str(work / "earlier.parquet"), str(work / "o.csv"), None)
    for args, parameter in [
        ((str(outside / "in.csv"), str(work / "o.csv"), None), "input"),
        ((str(data / "in.csv"), str(data / "o.csv"), None), "out"),
        ((str(data / "in.csv"), f"{work}/../outside/o.csv", None), "out"),
        ((str(data / "in.csv"), str(work / "o.csv"), str(outside)), "interactions"),
    ]:
        with pytest.raises(PathNotAllowed, match=f"parameter {parameter} = "):
            tasks.scoring.guard_score_paths(*args)


@pytest.mark.slow
def test_a_din_score_deployment_run_completes_under_the_roots(
    magazine_run: dict[str, Any],
    rows: pl.DataFrame,
    in_process: np.ndarray,
    roots: dict[str, Path],
) -> None:
    """As ``prefect deployment run din-score/amazon -p input=... -p out=...`` does."""
    from prefect import get_client
    from prefect.flow_engine import run_flow

    from flows.deployments import build_score_deployments
    from flows.score_flow import din_score

    source = roots["data"] / "rows.parquet"
    rows.write_parquet(source)
    deployment_id = build_score_deployments(["amazon"])[0].apply()

    def deployment_run(parameters: dict[str, Any]):
        with get_client(sync_client=True) as client:
            flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
            return run_flow(din_score, flow_run=flow_run, return_type="state")

    out = roots["work"] / "scores" / "scored.parquet"
    state = deployment_run({"input": str(source), "out": str(out)})
    assert state.is_completed(), state
    np.testing.assert_allclose(
        pl.read_parquet(out)["score"].to_numpy(), in_process, rtol=0, atol=PARITY
    )
    refused = deployment_run({"input": str(source), "out": str(roots["outside"] / "x.parquet")})
    assert refused.is_failed()
    with pytest.raises(PathNotAllowed, match="parameter out = "):
        refused.result()
    assert not (roots["outside"] / "x.parquet").exists()
