"""Run names and data-source labels (no servers: plain functions on real folders)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.data import SourceSpec, describe_source
from tasks.run_names import planned_source_label, run_name, source_label


def _spec(path: Path, synth: dict | None = None) -> SourceSpec:
    return SourceSpec("amazon", str(path), synth is not None, "sha256:0", synth=synth)


def test_labels_name_the_folder_the_fetched_files_or_the_synthetic_settings(
    amazon_magazine: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert source_label(describe_source("amazon", amazon_magazine)) == amazon_magazine.name
    assert amazon_magazine.name == "2018-magazine-subscriptions"
    generated = tmp_path / "amazon-scale0.05-seed0"
    assert source_label(_spec(generated, {"scale": 0.05, "seed": 0})) == "synthetic-x0.05"
    assert source_label(_spec(generated, {"scale": 0.05, "seed": 3})) == "synthetic-x0.05-seed3"

    monkeypatch.setenv("DIN_DATA_DIR", str(tmp_path / "data"))
    fetched = tmp_path / "data" / "raw" / "amazon"
    assert planned_source_label("amazon", "auto", 0.05, 0) == "synthetic-x0.05"  # no files yet
    fetched.mkdir(parents=True)
    (fetched / "reviews.json").write_text("{}\n")
    assert source_label(_spec(fetched)) == "raw"  # not "amazon" again
    assert planned_source_label("amazon", "auto", 0.05, 0) == "raw"
    assert planned_source_label("amazon", "synthetic", 0.01, 2) == "synthetic-x0.01-seed2"
    assert planned_source_label("amazon", str(amazon_magazine), 0.01, 0) == amazon_magazine.name


def test_run_name_is_readable_and_valid_for_mlflow_and_prefect(tmp_path: Path) -> None:
    from prefect.types.names import WITHOUT_BANNED_CHARACTERS

    name = run_name("amazon", "2018-magazine-subscriptions", "din_dice", "mba", 2024)
    assert name == "amazon:2018-magazine-subscriptions:din_dice+mba:seed2024"
    assert run_name("movielens", "ml-100k", "din", "none", 7) == "movielens:ml-100k:din+none:seed7"

    odd = tmp_path / "my data/100% <real> & 'quoted'"  # a folder name a user might choose
    odd.mkdir(parents=True)
    label = source_label(_spec(odd))
    name = run_name("amazon", label, "din", "none", 1)
    assert re.fullmatch(WITHOUT_BANNED_CHARACTERS, name)  # Prefect's rule for names
    assert "'" not in name and '"' not in name  # MLflow run_name filters quote with '
    assert re.fullmatch(r"[A-Za-z0-9._+:-]+", name)
    long = source_label(_spec(tmp_path / ("x" * 300)))
    assert len(long) == 60


def test_old_run_name_signature_still_works() -> None:
    """``flows.train_flow.run_name(model, regularizer, seed)``: the ablation flow's call."""
    from flows.train_flow import run_name as flow_run_name

    assert flow_run_name("din", "none", 2024) == "din+none:seed2024"
    assert flow_run_name("din", "mba", 3, dataset="amazon", source_label="ml") == (
        "amazon:ml:din+mba:seed3"
    )
