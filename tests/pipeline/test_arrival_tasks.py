"""Per-arrival ingestion in Prefect: a second run after one new arrival parses only that one."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from prefect import flow

from din_model.data.canonical.store import load_canonical
from din_model.data.sources.timeline_cut import cut_timeline, publish_next_arrival
from din_model.errors import ConfigError, DataError
from tasks.arrivals import ArrivalData, assemble_arrival_data
from tasks.data import describe_source

pytestmark = pytest.mark.slow


@flow(name="din-arrivals-test")
def arrivals_only(source: str, work: str, window: str | None) -> ArrivalData:
    spec = describe_source("movielens", Path(source))
    return assemble_arrival_data(spec, work, seed=7, max_len=20, window=window)


def test_new_arrival_is_the_only_one_parsed(
    prefect_server, movielens_100k: Path, tmp_path: Path
) -> None:
    staging, landing, work = tmp_path / "staging", tmp_path / "landing", tmp_path / "work"
    cut_timeline("movielens", movielens_100k, staging, every="1w", start="1998-04-01", limit=2)
    first = publish_next_arrival(staging, landing)
    assert first is not None
    with pytest.raises(DataError, match="at least two arrivals: older ones to train on"):
        arrivals_only(str(landing), str(work), None)
    second = publish_next_arrival(staging, landing)
    assert second is not None

    run1 = arrivals_only(str(landing), str(work), "2w")
    assert run1.parsed == [first.label, second.label]
    assert run1.newest == second.label and run1.held_back["label"] == second.label
    assert [used["label"] for used in run1.used] == [first.label]
    assert run1.family == "movielens/ml-100k/ml-100k"
    train = load_canonical(run1.train_canonical)
    newest_time = int(train.interactions["timestamp"].max())
    assert int(train.interactions["timestamp"].min()) >= newest_time - 14 * 86_400
    assert pl.read_parquet(run1.slice_rows).height > 0

    third = publish_next_arrival(staging, landing)
    assert third is not None
    run2 = arrivals_only(str(landing), str(work), "2w")
    assert run2.parsed == [third.label]  # the two older arrivals came back Cached
    assert len(list((work / "cache" / "arrivals").iterdir())) == 3
    assert [used["label"] for used in run2.used] == [first.label, second.label]
    assert run2.arrivals_fingerprint != run1.arrivals_fingerprint
    assert run2.train_canonical != run1.train_canonical

    # unchanged arrivals: nothing parsed, same outputs; a deleted cache folder is rebuilt
    run3 = arrivals_only(str(landing), str(work), "2w")
    assert run3.parsed == [] and run3.train_canonical == run2.train_canonical
    import shutil

    shutil.rmtree(run2.train_canonical)
    run4 = arrivals_only(str(landing), str(work), "2w")
    assert run4.parsed == [] and Path(run4.train_canonical, "canonical.json").is_file()

    with pytest.raises(ConfigError, match="^window: expected"):
        arrivals_only(str(landing), str(work), "fortnight")
