"""The registered model takes raw requests: Amazon Magazine_Subscriptions end to end.

A finished ``din-train`` run on the real Magazine_Subscriptions reviews registers
``din-amazon``; every test row, sent in the owners' form (ASINs, the reviewer id,
the review time, the earlier reviews' ASINs), scores as the run scored it. The
MovieLens counterpart is in ``test_train_flow.py``.
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

pytestmark = pytest.mark.slow

#: See test_train_flow.PARITY: the same float32 network on the same ids, batched differently.
PARITY = 1e-6


def test_every_magazine_test_row_scores_raw_as_in_training(
    magazine_run: dict[str, Any], magazine_raw_test: pl.DataFrame
) -> None:
    import mlflow

    model = mlflow.pyfunc.load_model("models:/din-amazon@champion")
    raw = magazine_raw_test
    expected = pl.read_parquet(Path(magazine_run["run_dir"]) / "predictions.parquet")
    assert raw.height == expected.height == 696
    assert raw["label"].to_list() == expected["label"].to_list()
    assert raw["item_id"].str.len_chars().min() == 10  # ASINs, not vocabulary indices
    scores = model.predict(raw.drop("label").to_pandas())
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), rtol=0, atol=PARITY)


def test_the_signature_and_example_show_the_raw_schema(magazine_run: dict[str, Any]) -> None:
    import mlflow

    info = mlflow.models.get_model_info("models:/din-amazon@champion")
    inputs = {c["name"]: c for c in info.signature.inputs.to_dict()}
    assert inputs["item_id"]["type"] == "string"
    assert inputs["history_item_id"]["type"] == "array"
    assert inputs["timestamp"]["type"] == "long"
    assert inputs["category"]["required"] is False  # looked up by item id when left out
    assert "hist_item_id" not in inputs  # no encoded column leaks into the schema
    model = mlflow.pyfunc.load_model("models:/din-amazon@champion")
    example = model.input_example
    assert example is not None and set(example.columns) <= set(inputs)
    assert np.all((model.predict(example) > 0) & (model.predict(example) < 1))


def test_the_registered_model_runs_on_onnxruntime_as_an_option(
    magazine_raw_test: pl.DataFrame,
) -> None:
    import mlflow

    rows = magazine_raw_test.head(100)
    request = rows.drop("label").to_pandas()
    eager = mlflow.pyfunc.load_model("models:/din-amazon@champion").predict(request)
    onnx = mlflow.pyfunc.load_model(
        "models:/din-amazon@champion", model_config={"runtime": "onnx", "num_threads": 1}
    ).predict(request)
    # the export's bound (din_model/serving/export.py): dense vs packed attention and
    # float32 kernels differ in rounding only
    np.testing.assert_allclose(onnx, eager, rtol=0, atol=1e-5)


def _din(*argv: str) -> subprocess.CompletedProcess[str]:
    din = Path(sys.executable).with_name("din")
    return subprocess.run(
        [str(din), *argv], capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ},  # MLFLOW_TRACKING_URI points at the module's store
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_din_export_carries_the_raw_encoder_and_logs_the_file(
    magazine_run: dict[str, Any], magazine_raw_test: pl.DataFrame, tmp_path: Path, fmt: str
) -> None:
    from mlflow import MlflowClient

    from din_model.serving.raw_scorer import RawScorer

    out = tmp_path / "export"
    done = _din("export", "--model", "models:/din-amazon@champion", "--format", fmt,
                "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = magazine_raw_test
    expected = pl.read_parquet(Path(magazine_run["run_dir"]) / "predictions.parquet")
    scores = RawScorer.from_export(out).score(rows.drop("label"))
    # the export's bound (din_model/serving/export.py): rounding of dense vs packed forms
    np.testing.assert_allclose(scores, expected["score"].to_numpy(), rtol=0, atol=1e-5)
    logged = MlflowClient().list_artifacts(magazine_run["run_id"], f"export/{fmt}")
    assert {Path(a.path).name for a in logged} >= {"export.json"}
    refused = _din("export", "--model", "models:/din-amazon@champion", "--out", str(out))
    assert refused.returncode == 2 and "error" in refused.stderr  # no --force: not replaced
    unknown = _din(
        "export", "--model", "models:/din-nothing@champion", "--out", str(tmp_path / "x")
    )
    assert unknown.returncode == 2 and "models:/din-nothing@champion" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_plain_ranking_requests_encode_every_magazine_row_as_the_frame_path(
    magazine_run: dict[str, Any], magazine_raw_test: pl.DataFrame
) -> None:
    """The serving fast path (plain Python values, no frames) gives the training ids."""
    from din_model.serving.raw_scorer import RawScorer

    run_dir = Path(magazine_run["run_dir"])
    encoder = RawScorer.from_checkpoint(
        run_dir / "checkpoints" / "best.pt", run_dir / "serving"
    ).encoder
    raw = magazine_raw_test.drop("label")
    expected = encoder.encode(raw)
    for index, row in enumerate(raw.iter_rows(named=True)):
        user = {k: v for k, v in row.items() if k not in ("item_id", "category")}
        plain = encoder.encode_plain_ranking(user, [row["item_id"]])
        assert plain is not None, row
        for name, ids in expected.items():
            mine, theirs = np.atleast_1d(plain[name][0]), np.atleast_1d(ids[index])
            width = len(mine)  # one row's history is padded to its own length, not the batch's
            np.testing.assert_array_equal(mine, theirs[:width])
            assert not theirs[width:].any()  # the rest of the batch's width is padding (id 0)
