"""`din prepare` end to end: summary, bad input, --on-bad-lines skip, nothing half-written."""

from __future__ import annotations

import gzip
import json
import logging
import shutil

import polars as pl
import pytest

from din_model.cli import _main
from din_model.cli import prepare as prepare_command

REVIEWS = "Magazine_Subscriptions_5.json.gz"


@pytest.fixture(autouse=True)
def prepare_command_only(monkeypatch):
    """The real entry point (parsing, error handling, exit codes) with only `prepare`
    registered: the other commands' imports (torch for `din train`) are not this file's cost."""
    monkeypatch.setattr(
        _main, "register_all", lambda subparsers, package: prepare_command.register(subparsers)
    )


def din(*argv: str) -> int:
    return _main.run(["prepare", *argv], ["din_model.cli"])


def leftovers(parent, name):
    """Temporary siblings that a failed run must not leave behind."""
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}")]


@pytest.fixture()
def broken_magazine(amazon_magazine, tmp_path):
    """The real 2018 files with line 3 of the reviews cut in half."""
    source = tmp_path / "broken"
    shutil.copytree(amazon_magazine, source)
    lines = gzip.decompress((source / REVIEWS).read_bytes()).decode().splitlines()
    lines[2] = lines[2][:40]
    (source / REVIEWS).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return source


def test_prepare_prints_a_summary(amazon_magazine, tmp_path, capsys):
    out = tmp_path / "out"
    assert din("--dataset", "amazon", "--source", str(amazon_magazine), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "prepared amazon (amazon-2018, sequential)" in printed
    assert "2,302 interactions, 348 users" in printed
    assert "train      2,516 samples, positive rate 0.500" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        ".din-output",  # marks the folder as din's own output
        "feature_map.json",
        "prepare_report.json",
        "serving",  # raw request schema, item table and raw example rows for the served model
        "test.parquet",
        "train.parquet",
        "valid.parquet",
        "validation.json",
        "vocab",
    ]


def test_a_malformed_line_fails_with_file_and_line_and_leaves_no_out(
    broken_magazine, tmp_path, capsys
):
    out = tmp_path / "out"
    code = din("--dataset", "amazon", "--source", str(broken_magazine), "--out", str(out))
    assert code == 2
    message = capsys.readouterr().err
    assert f"{REVIEWS}:3" in message and message.startswith("din prepare: error:")
    assert not out.exists() and leftovers(tmp_path, "out") == []


def test_skip_moves_bad_lines_to_rejects_and_reports_them(broken_magazine, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--dataset", "amazon", "--source", str(broken_magazine), "--out", str(out)]
    assert din(*argv, "--on-bad-lines", "skip", "--max-len", "20", "--seed", "7") == 0
    assert "1 rejected lines" in capsys.readouterr().out
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["rejected_lines"] == 1 and report["max_len"] == 20 and report["seed"] == 7
    rejects = list((out / "rejects").iterdir())
    assert [p.name for p in rejects] == [f"{REVIEWS}.rejects.jsonl"]
    assert json.loads(rejects[0].read_text().splitlines()[0])["line"] == 3
    assert report["rejects_files"] == [f"rejects/{REVIEWS}.rejects.jsonl"]
    assert pl.read_parquet(out / "train.parquet")["hist_item_id"].list.len().max() <= 20
    assert leftovers(tmp_path, "out") == []


def test_an_implausible_value_keeps_the_previous_out(amazon_magazine, tmp_path, capsys):
    source = tmp_path / "ms"
    shutil.copytree(amazon_magazine, source)
    lines = gzip.decompress((source / REVIEWS).read_bytes()).decode().splitlines()
    record = json.loads(lines[0])
    record["unixReviewTime"] *= 1000  # milliseconds: parses, but is not a plausible time
    lines[0] = json.dumps(record)
    (source / REVIEWS).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    (out / ".din-output").write_text('{"command": "prepare"}')  # an earlier output of din
    argv = ["--dataset", "amazon", "--source", str(source), "--out", str(out), "--force"]
    assert din(*argv) == 2
    message = capsys.readouterr().err
    # caught where the line is read (the GE suites stay the second gate)
    assert f"{REVIEWS}:1: column 'unixReviewTime': expected a unix timestamp in" in message
    assert f"got '{record['unixReviewTime']}'" in message
    assert sorted(p.name for p in out.iterdir()) == [".din-output", "keep.txt"]
    assert leftovers(tmp_path, "out") == []


def test_unrecognised_layout_and_bad_max_len(amazon_magazine, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert din("--dataset", "movielens", "--source", str(empty), "--out", str(tmp_path / "o")) == 2
    assert str(empty) in capsys.readouterr().err
    argv = ["--dataset", "amazon", "--source", str(amazon_magazine), "--out", str(tmp_path / "o")]
    assert din(*argv, "--max-len", "0") == 2
    assert "--max-len must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def write_display_ad(source):
    """A small display-ad set in the published schema (no real copy is available)."""
    source.mkdir()
    day, start = 86_400, 1_494_000_000 - (1_494_000_000 + 8 * 3600) % 86_400
    impressions = ["user,time_stamp,adgroup_id,pid,nonclk,clk"]
    log = ["user,time_stamp,btag,cate,brand"]
    for u in range(1, 31):
        for d in range(4):
            clk = int((u + d) % 5 == 0)
            pid = "430548_1007" if u % 2 else "430539_1007"
            impressions.append(f"{u},{start + d * day + u * 60},{u % 7 + 1},{pid},{1 - clk},{clk}")
            log.append(f"{u},{start + d * day + u * 30},pv,{u % 3},{'NULL' if u % 4 else u % 5}")
    (source / "raw_sample.csv").write_text("\n".join(impressions) + "\n")
    (source / "behavior_log.csv").write_text("\n".join(log) + "\n")
    ads = ["adgroup_id,cate_id,campaign_id,customer,brand,price"]
    ads += [f"{a},{a % 3},{a % 2},{a % 4},{'NULL' if a == 3 else a},{a * 1.5}" for a in range(1, 8)]
    (source / "ad_feature.csv").write_text("\n".join(ads) + "\n")
    profile = [
        "userid,cms_segid,cms_group_id,final_gender_code,age_level,pvalue_level,"
        "shopping_level,occupation,new_user_class_level "
    ]
    profile += [
        f"{u},0,{u % 3},{1 + u % 2},{u % 6},{'' if u % 5 else 2},3,0,{u % 4}" for u in range(1, 25)
    ]
    (source / "user_profile.csv").write_text("\n".join(profile) + "\n")


def test_display_ad_day_split_logs_every_stage(tmp_path, capsys, caplog):
    source = tmp_path / "ad"
    write_display_ad(source)
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO, logger="din_model"):
        assert din("--dataset", "taobao", "--source", str(source), "--out", str(out)) == 0
    assert "taobao (taobao-display-ad, day_split)" in capsys.readouterr().out
    logged = caplog.text
    for stage in (
        "ingest",
        "validate canonical",
        "encode ids",
        "protocol day_split",
        "assemble splits",
        "validate samples",
    ):
        assert f"{stage}" in logged and "done in" in logged, stage
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["samples"] == {"train": 60, "valid": 30, "test": 30}
    assert report["max_len"] == 50 and report["days"] == 4
    feature_map = json.loads((out / "feature_map.json").read_text())
    assert feature_map["groups"]["behaviour"] == ["hist_cate_id", "hist_brand_id"]
    assert "pid" in feature_map["groups"]["context"]
    assert len(feature_map["groups"]["user_profile"]) == 8
    test = pl.read_parquet(out / "test.parquet")
    # one log event per user and day, always before the impression: day 3 sees 4 events
    assert test["hist_cate_id"].list.len().to_list() == [4] * 30
