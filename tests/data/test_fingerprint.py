"""File digests and fingerprints: content-only, and each settled file read once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from din_model.io.fingerprint import file_manifest, file_sha256, fingerprint_files


def test_fingerprint_follows_content_not_location(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.txt").write_text("same bytes")
    first = fingerprint_files([tmp_path / "a" / "x.txt"])
    assert first == fingerprint_files([tmp_path / "b" / "x.txt"])
    (tmp_path / "b" / "x.txt").write_text("same byteS")
    assert fingerprint_files([tmp_path / "b" / "x.txt"]) != first


def test_a_fresh_file_rewritten_with_the_same_size_gets_a_new_digest(tmp_path: Path) -> None:
    path = tmp_path / "fresh.txt"
    path.write_text("abc")
    before = file_sha256(path)
    path.write_text("abd")  # same size, likely the same timestamp tick
    assert file_sha256(path) != before


def test_a_settled_file_is_read_once(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "settled.txt"
    path.write_text("old data")
    old = time.time_ns() - 3_600 * 10**9
    os.utime(path, ns=(old, old))
    digest = file_sha256(path)
    reads = []
    real_open = Path.open
    monkeypatch.setattr(
        Path, "open", lambda self, *a, **k: reads.append(self) or real_open(self, *a, **k)
    )
    assert file_manifest(tmp_path)["settled.txt"]["sha256"] == digest
    assert reads == []
