"""Source paths are paths, not glob patterns: ``ml[1]`` never reads its sibling ``ml1``.

Polars' readers expand ``*``, ``?`` and ``[...]`` in a path by default, so a
folder whose name holds one of them was read from other files than the ones
``din prepare`` fingerprints and reports.
"""

from __future__ import annotations

import gzip
import json

import pytest
from _io_helpers import din, write_tiny_movielens

from din_model.data.adapters import ingest
from din_model.io.fingerprint import fingerprint_files

REVIEWS_2018 = "Magazine_Subscriptions_5.json.gz"
META_2018 = "meta_Magazine_Subscriptions.json.gz"


def test_prepare_reads_only_its_own_folder_when_the_name_has_brackets(movielens_100k, tmp_path):
    own = write_tiny_movielens(movielens_100k, tmp_path / "ml[1]", users=20)
    write_tiny_movielens(movielens_100k, tmp_path / "ml1", users=40)  # what `ml[1]` matches
    out = tmp_path / "out"
    assert din("prepare", "--dataset", "movielens", "--source", str(own), "--out", str(out)) == 0
    report = json.loads((out / "prepare_report.json").read_text())
    own_ratings = (own / "u.data").read_text().splitlines()
    assert report["interactions"] == len(own_ratings)
    assert report["users"] == 20
    files = sorted(own / name for name in ("u.data", "u.item", "u.user", "u.genre"))
    assert report["fingerprint"] == fingerprint_files(files)


@pytest.mark.parametrize("name", ["ml[1]", "ml?", "ml*"])
def test_delimited_files_are_read_from_the_named_folder(movielens_100k, tmp_path, name):
    own = write_tiny_movielens(movielens_100k, tmp_path / name, users=10)
    write_tiny_movielens(movielens_100k, tmp_path / "ml1", users=30)
    data = ingest("movielens", own)
    assert data.interactions.height == len((own / "u.data").read_text().splitlines())


@pytest.mark.parametrize("name", ["mag[1]", "mag?"])
def test_json_lines_are_read_from_the_named_folder(amazon_magazine, tmp_path, name):
    own, sibling = tmp_path / name, tmp_path / "mag1"
    for folder in (own, sibling):
        folder.mkdir()
        (folder / META_2018).write_bytes((amazon_magazine / META_2018).read_bytes())
    reviews = gzip.decompress((amazon_magazine / REVIEWS_2018).read_bytes()).splitlines()
    (own / REVIEWS_2018).write_bytes(gzip.compress(b"\n".join(reviews) + b"\n"))
    (sibling / REVIEWS_2018).write_bytes(gzip.compress(b"\n".join(reviews[:600]) + b"\n"))
    plain = tmp_path / "plain"
    plain.mkdir()
    for file in (REVIEWS_2018, META_2018):
        (plain / file).write_bytes((own / file).read_bytes())
    assert ingest("amazon", own).interactions.equals(ingest("amazon", plain).interactions)
