"""The output-folder rule as a library: verdicts, the re-check before the rename, the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from din_model.errors import OutputRefused
from din_model.io.fingerprint import file_manifest
from din_model.io.output_dir import (
    MARKER,
    Claim,
    claim_output_dir,
    read_marker,
    replace_output_dir,
    write_marker,
)


def test_verdicts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert claim_output_dir(out, command="train") is Claim.NEW
    out.mkdir()
    assert claim_output_dir(out, command="train") is Claim.NEW
    write_marker(out, "train")
    (out / "checkpoints").mkdir()
    assert read_marker(out)["command"] == "train"
    unfinished = claim_output_dir(out, command="train", resumable=lambda p: True)
    assert unfinished is Claim.RESUME
    with pytest.raises(OutputRefused, match="--force"):
        claim_output_dir(out, command="train", resumable=lambda p: False)
    assert claim_output_dir(out, command="train", force=True) is Claim.REPLACE
    # another command's output is never resumed, only replaced with force
    with pytest.raises(OutputRefused, match="`din train` output"):
        claim_output_dir(out, command="prepare", resumable=lambda p: True)
    assert list(tmp_path.iterdir()) == [out]  # the writability probe left nothing


def test_a_folder_that_appears_during_the_work_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    refused = pytest.raises(OutputRefused, match="not empty")
    with refused, replace_output_dir(out, command="prepare", force=True) as tmp:
        (tmp / "train.parquet").write_bytes(b"new")
        out.mkdir()  # meanwhile, someone else writes there
        (out / "notes.txt").write_text("mine\n")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_marker_never_enters_a_fingerprint(tmp_path: Path) -> None:
    with replace_output_dir(tmp_path / "raw", command="synth") as tmp:
        (tmp / "reviews.json").write_text("{}\n")
    assert (tmp_path / "raw" / MARKER).is_file()
    assert list(file_manifest(tmp_path / "raw")) == ["reviews.json"]
