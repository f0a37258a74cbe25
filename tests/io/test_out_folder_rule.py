"""``--out`` never replaces what is not ours: prepare, synth and train on real CLI invocations.

An output folder is replaced only when it is absent or empty, or when it
holds an earlier output of this project (its ``.din-output`` marker) and
``--force`` is given; an unfinished ``din train`` output resumes without it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from _io_helpers import FAST_TRAIN, din, one_error

from din_model.errors import DinError
from din_model.pipeline import fit, fit_and_score

MARKER = ".din-output"
FAST_CONFIG = {
    "model": {"embedding_dim": 4, "mlp_hidden": [8]},
    "train": {"epochs": 2, "num_threads": 1, "progress": "none"},
}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones included) and its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def prepare(source: Path, out: Path, *extra: str) -> int:
    argv = ["--dataset", "movielens", "--source", str(source), "--out", str(out), *extra]
    return din("prepare", *argv)


# -- din prepare -----------------------------------------------------------------------


def test_prepare_out_equal_to_source_keeps_the_raw_data(tiny_source, capsys):
    before = snapshot(tiny_source)
    for extra in ([], ["--force"]):
        assert prepare(tiny_source, tiny_source, *extra) == 2
        line = one_error(capsys, "prepare")
        assert str(tiny_source) in line and "source" in line
    assert snapshot(tiny_source) == before


def test_prepare_out_inside_the_source_is_refused(tiny_source, capsys):
    before = snapshot(tiny_source)
    assert prepare(tiny_source, tiny_source / "prepared") == 2
    assert "source" in one_error(capsys, "prepare")
    assert snapshot(tiny_source) == before


def test_prepare_out_containing_the_source_is_refused_even_with_force(
    prepared_tiny, tiny_source, tmp_path, capsys
):
    """An earlier output of ours into which the raw data was moved: --force must not delete it."""
    out = tmp_path / "previous"
    shutil.copytree(prepared_tiny, out)
    raw = out / "raw"
    shutil.move(tiny_source, raw)
    before = snapshot(raw)
    assert prepare(raw, out, "--force") == 2
    assert "source" in one_error(capsys, "prepare")
    assert snapshot(raw) == before


def test_prepare_out_on_a_folder_of_notes_is_refused_even_with_force(tiny_source, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("try a longer history\n")
    for extra in ([], ["--force"]):
        assert prepare(tiny_source, notes, *extra) == 2
        line = one_error(capsys, "prepare")
        assert str(notes) in line and "refusing" in line
    assert snapshot(notes) == {"ideas.txt": b"try a longer history\n"}


def test_prepare_out_on_an_existing_file_is_refused(tiny_source, tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("mine\n")
    for extra in ([], ["--force"]):
        assert prepare(tiny_source, target, *extra) == 2
        line = one_error(capsys, "prepare")
        assert str(target) in line and "file" in line
    assert target.read_text() == "mine\n"


def test_prepare_replaces_an_earlier_output_only_with_force(
    prepared_tiny, tiny_source, tmp_path, capsys
):
    marker = json.loads((prepared_tiny / MARKER).read_text())
    assert marker["command"] == "prepare" and marker["version"] and marker["created"]
    out = tmp_path / "previous"
    shutil.copytree(prepared_tiny, out)
    (out / "stale.txt").write_text("from the earlier run\n")
    before = snapshot(out)
    assert prepare(tiny_source, out) == 2
    line = one_error(capsys, "prepare")
    assert str(out) in line and "--force" in line
    assert snapshot(out) == before
    assert prepare(tiny_source, out, "--force") == 0
    assert not (out / "stale.txt").exists() and (out / MARKER).is_file()
    assert (out / "train.parquet").read_bytes() == (prepared_tiny / "train.parquet").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml", "previous"]  # no temporary left


# -- din synth -------------------------------------------------------------------------


def synth(out: Path, *extra: str) -> int:
    return din("synth", "amazon", "--scale", "0.0001", "--out", str(out), *extra)


def test_synth_refuses_foreign_folders_and_needs_force_for_its_own(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("keep\n")
    assert synth(notes, "--force") == 2
    assert "refusing" in one_error(capsys, "synth")
    assert snapshot(notes) == {"ideas.txt": b"keep\n"}

    out = tmp_path / "synth"
    assert synth(out) == 0
    assert json.loads((out / MARKER).read_text())["command"] == "synth"
    before = snapshot(out)
    assert synth(out) == 2
    assert "--force" in one_error(capsys, "synth")
    assert snapshot(out) == before
    assert synth(out, "--force") == 0


# -- din train -------------------------------------------------------------------------


def train(data: Path, out: Path, *extra: str) -> int:
    return din("train", "--data", str(data), *FAST_TRAIN, "--out", str(out), *extra)


def test_train_refuses_a_foreign_folder_and_the_data_folder(prepared_tiny, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(prepared_tiny, data)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("keep\n")
    assert train(data, notes, "--force") == 2
    assert "refusing" in one_error(capsys, "train")
    assert snapshot(notes) == {"ideas.txt": b"keep\n"}

    before = snapshot(data)
    for out in (data, data / "run"):
        assert train(data, out, "--force") == 2
        assert "source" in one_error(capsys, "train")
    assert snapshot(data) == before


def test_train_a_finished_output_needs_force(prepared_tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert train(prepared_tiny, out) == 0
    assert json.loads((out / MARKER).read_text())["command"] == "train"
    capsys.readouterr()
    before = snapshot(out)
    assert train(prepared_tiny, out) == 2
    line = one_error(capsys, "train")
    assert str(out) in line and "--force" in line
    assert snapshot(out) == before
    assert train(prepared_tiny, out, "--force") == 0
    assert (out / "metrics.json").is_file()


class Interrupted(Exception):
    pass


def stop_after_first_epoch(record: dict) -> None:
    if record["epoch"] == 1:
        raise Interrupted


def test_train_an_unfinished_output_resumes_without_force(prepared_tiny, tmp_path):
    out = tmp_path / "run"
    with contextlib.suppress(Interrupted):
        fit(prepared_tiny, out, "base", None, FAST_CONFIG, on_epoch_end=stop_after_first_epoch)
    assert (out / MARKER).is_file() and (out / "checkpoints" / "last.pt").is_file()
    resumed = fit_and_score(prepared_tiny, out, "base", None, FAST_CONFIG)
    assert resumed.fit.resumed_from_epoch == 1 and len(resumed.fit.history) == 2
    with pytest.raises(DinError, match="--force"):
        fit_and_score(prepared_tiny, out, "base", None, FAST_CONFIG)
    again = fit_and_score(prepared_tiny, out, "base", None, FAST_CONFIG, force=True)
    assert again.fit.resumed_from_epoch is None
