"""The benchmark harness writes a well-formed report (no timing is checked here)."""

from __future__ import annotations

import json

import pytest
import torch

from bench.cases import DataSpec, Plan, TrainCase
from bench.harness import run_plan
from bench.report import check_report, markdown
from din_model.errors import DataError

GOOD_RESULT = {
    "name": "x/din/b8",
    "dataset": "x",
    "model": "din",
    "device": "cpu",
    "batch": 8,
    "emb": 4,
    "max_len": 5,
    "train_samples_per_s": 10.5,
    "infer_samples_per_s": 20.0,
    "gauc": None,
    "peak_mem_mb": 100.0,
}
MACHINE = {"cpu": "test", "cores": 2, "gpu": None, "torch": torch.__version__}


def test_schema_accepts_nulls_and_rejects_missing_or_bad_values():
    check_report({"machine": MACHINE, "results": [GOOD_RESULT]})
    for broken in (
        {"machine": {"cpu": "x"}, "results": [GOOD_RESULT]},
        {"machine": MACHINE, "results": []},
        {"machine": MACHINE, "results": [{k: v for k, v in GOOD_RESULT.items() if k != "gauc"}]},
        {"machine": MACHINE, "results": [{**GOOD_RESULT, "batch": "8"}]},
        {"machine": MACHINE, "results": [{**GOOD_RESULT, "gauc": float("nan")}]},
    ):
        with pytest.raises(DataError):
            check_report(broken)


def test_a_tiny_run_writes_json_and_markdown(tmp_path):
    """Synthetic data at 1% scale, prepared (timed) and trained for one epoch on 2,048 rows."""
    plan = Plan(
        datasets=[DataSpec("tiny", "amazon", scale=0.01, timed=True)],
        cases=[
            TrainCase(
                name="tiny/din_dice/b256",
                dataset="tiny",
                model="din_dice",
                batch=256,
                preset="paper",
                overrides=("model.embedding_dim=8", "train.num_threads=1"),
                train_rows=2048,
                infer_rows=1024,
                warmup_batches=1,
            )
        ],
    )
    out = tmp_path / "bench.json"
    run_plan(
        plan,
        device=torch.device("cpu"),
        out=out,
        work=tmp_path / "work",
        extra=["train.eval_batch_size=512"],
        header={"mode": "test", "device": "cpu"},
    )
    report = json.loads(out.read_text())
    check_report(report, out)
    prepare, train, run = report["results"]
    assert prepare["kind"] == "prepare" and prepare["seconds"] > 0 and prepare["peak_mem_mb"] > 0
    # the one fit, select and score path, on the whole splits
    assert run["kind"] == "run" and run["seconds"] > 0 and run["epochs_run"] == 1
    assert 0.0 <= run["gauc"] <= 1.0 and run["test"]["n"] > 0
    assert train["train_rows"] == 2048 and train["infer_rows"] == 1024
    assert train["train_samples_per_s"] > 0 and train["infer_samples_per_s"] > 0
    assert 0.0 <= train["gauc"] <= 1.0 and train["emb"] == 8 and train["max_len"] >= 1
    table = out.with_suffix(".md").read_text()
    assert table == markdown(report) and "tiny/din_dice/b256" in table


def test_the_profile_script_reports_throughput_and_operators(tmp_path, capsys):
    from bench.profile import main as profile_main
    from din_model.data.sources.synth import write_synthetic_amazon
    from din_model.pipeline.prepare import prepare_dataset

    raw = tmp_path / "raw"
    write_synthetic_amazon(raw, scale=0.002, seed=0)
    prepare_dataset("amazon", raw, tmp_path / "prepared", seed=1)
    assert (
        profile_main(["--data", str(tmp_path / "prepared"), "--batch", "64", "--batches", "3"]) == 0
    )
    out = capsys.readouterr().out
    assert "samples/s under the profiler" in out
    assert "aten::" in out  # the operator table
