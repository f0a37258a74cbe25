"""``din score``'s core: files of raw Magazine_Subscriptions impressions scored like training.

A tiny DIN is trained for one epoch on the real Amazon Magazine_Subscriptions reviews
(prepared here, ~6 s for the module); its test split, decoded to raw requests
(:func:`din_model.pipeline.prepare.raw_samples`: ASINs, reviewer ids, review times, the
earlier reviews' ASINs), is written as parquet, CSV and JSON lines and scored with
:func:`din_model.serving.batch.score_file`. No MLflow here (tests/pipeline/test_score_flow.py
goes through the registry).

Tolerance 1e-6 on probabilities: the scores come from the same float32 network on the
same ids as ``RawScorer.score`` and as training's ``predictions.parquet``; only the batch
composition differs (chunks of other sizes, histories padded to another width), which
changes the summation order of float32 matrix products by a few ulps (~1e-7 relative)
and nothing else. A wrong id, a history cut at the wrong end or a row out of order moves
a score by far more (1e-4 and up, even for a one-epoch model).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from din_model.data.adapters import ingest
from din_model.errors import ConfigError, DataError, OutputRefused, WriteFailed
from din_model.pipeline import fit_and_score
from din_model.pipeline.prepare import prepare_dataset, raw_samples
from din_model.serving.batch import score_file
from din_model.serving.batch_files import rejects_path
from din_model.serving.batch_rows import BadRow
from din_model.serving.histories import EventLog, profile_values, user_context
from din_model.serving.raw_scorer import RawScorer

SEED = 7
PARITY = 1e-6  # see the module doc
TINY = {
    "model": {"embedding_dim": 8, "mlp_hidden": [16], "attention_hidden": [16]},
    "train": {"epochs": 1, "progress": "none"},
}
FORMATS = ("parquet", "csv", "jsonl")


@pytest.fixture(scope="module")
def magazine(amazon_magazine: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A trained tiny model, its scorer, the raw test rows and training's test scores."""
    root = tmp_path_factory.mktemp("batch-scoring")
    prepare_dataset("amazon", amazon_magazine, root / "prepared", seed=SEED)
    result = fit_and_score(root / "prepared", root / "run", "din", None, TINY)
    layout = result.layout
    data = ingest("amazon", amazon_magazine)
    raw = raw_samples(data, seed=SEED, split="test")
    return SimpleNamespace(
        source=amazon_magazine,
        data=data,
        raw=raw,
        rows=raw.drop("label"),
        expected=pl.read_parquet(layout.predictions)["score"].to_numpy(),
        scorer=RawScorer.from_checkpoint(layout.best_checkpoint, layout.serving),
    )


def write(frame: pl.DataFrame, path: Path) -> Path:
    """``frame`` as parquet, CSV (histories as ids separated by spaces) or JSON lines."""
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        lists = [n for n, t in frame.schema.items() if isinstance(t, pl.List)]
        frame.with_columns(pl.col(n).list.join(" ") for n in lists).write_csv(path)
    else:
        frame.write_ndjson(path)
    return path


def read(path: Path) -> pl.DataFrame:
    readers = {".parquet": pl.read_parquet, ".csv": pl.read_csv, ".jsonl": pl.read_ndjson}
    return readers[path.suffix](path)


def same_second_rows(data, rows: pl.DataFrame) -> np.ndarray:
    """Rows whose user has more than one event at exactly the row's timestamp."""
    counts = data.interactions.group_by("user_id", "timestamp").len()
    joined = rows.join(counts, on=["user_id", "timestamp"], how="left", maintain_order="left")
    return (joined["len"].fill_null(0) > 1).to_numpy()


# -- scores ----------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_scores_like_the_scorer_and_training(
    magazine: SimpleNamespace, tmp_path: Path, fmt: str
) -> None:
    source = write(magazine.rows, tmp_path / f"rows.{fmt}")
    out = tmp_path / f"scored.{fmt}"
    result = score_file(magazine.scorer, source, out, progress="none", chunk_rows=100)
    assert (result.rows, result.scored, result.skipped, result.rejects) == (696, 696, 0, None)
    scored = read(out)
    assert scored.columns == [*magazine.rows.columns, "score"]
    assert scored["item_id"].to_list() == magazine.rows["item_id"].to_list()  # input order
    direct = magazine.scorer.score(magazine.rows)
    np.testing.assert_allclose(scored["score"].to_numpy(), direct, rtol=0, atol=PARITY)
    np.testing.assert_allclose(scored["score"].to_numpy(), magazine.expected, rtol=0, atol=PARITY)


def test_csv_histories_may_be_json_lists_and_outputs_score_again(
    magazine: SimpleNamespace, tmp_path: Path
) -> None:
    rows = magazine.rows.head(40)
    lists = [json.dumps(h) for h in rows["history_item_id"].to_list()]
    as_json = rows.with_columns(pl.Series("history_item_id", lists))
    as_json.write_csv(tmp_path / "json.csv")
    score_file(magazine.scorer, tmp_path / "json.csv", tmp_path / "a.csv", progress="none")
    first = read(tmp_path / "a.csv")
    np.testing.assert_allclose(
        first["score"].to_numpy(), magazine.expected[:40], rtol=0, atol=PARITY
    )
    # an output (histories written as ids separated by spaces) is valid input again
    score_file(
        magazine.scorer, write(rows, tmp_path / "b.parquet"), tmp_path / "b.csv", progress="none"
    )
    again = read(tmp_path / "b.csv").drop("score")
    assert again["history_item_id"][0] == " ".join(rows["history_item_id"][0])
    score_file(magazine.scorer, write(again, tmp_path / "c.csv"), tmp_path / "c.parquet")
    np.testing.assert_allclose(
        read(tmp_path / "c.parquet")["score"].to_numpy(), first["score"].to_numpy(), atol=PARITY
    )


# -- histories from --interactions -----------------------------------------------------------
def test_interactions_rebuild_the_training_histories(magazine: SimpleNamespace) -> None:
    """Exact on rows without a same-second event; with one, exactly those events are missing.

    Amazon review times are whole days, so 376 of the 696 test rows have another review
    of the same user on the same day; training orders those by file line and puts them in
    the history, the strictly-earlier rule leaves them out (see serving/histories.py).
    """
    rows = magazine.raw
    log = EventLog.from_canonical(magazine.data, ["item_id"])
    built = log.histories(rows["user_id"], rows["timestamp"].to_numpy(), max_len=100)["item_id"]
    ties = same_second_rows(magazine.data, rows)
    assert 0 < ties.sum() < len(rows)  # both kinds are tested
    expected, got = rows["history_item_id"].to_list(), built.to_list()
    assert all(e == g for e, g, tie in zip(expected, got, ties, strict=True) if not tie)
    assert max(len(e) for e in expected) < 100  # no cut: the same-second events are the tail
    counts = magazine.data.interactions.group_by("user_id", "timestamp").len()
    at_t = rows.join(counts, on=["user_id", "timestamp"], how="left", maintain_order="left")
    for e, g, n in zip(expected, got, at_t["len"].to_list(), strict=True):
        assert g == e[: len(e) - (n - 1)]  # the row's own review is the user's last one


def test_score_file_with_interactions_scores_rows_without_histories(
    magazine: SimpleNamespace, tmp_path: Path
) -> None:
    rows = magazine.rows
    source = write(rows.drop("history_item_id"), tmp_path / "no-history.csv")
    out = tmp_path / "scored.parquet"
    result = score_file(magazine.scorer, source, out, interactions=magazine.source, progress="none")
    assert result.scored == 696 and result.history_from == str(magazine.source)
    scored = read(out)
    assert "history_item_id" not in scored.columns  # the input rows plus the score
    clean = ~same_second_rows(magazine.data, rows)
    np.testing.assert_allclose(
        scored["score"].to_numpy()[clean], magazine.expected[clean], rtol=0, atol=PARITY
    )
    with pytest.raises(ConfigError, match="history_item_id.*--interactions"):
        score_file(
            magazine.scorer,
            write(rows, tmp_path / "with-history.parquet"),
            tmp_path / "x.parquet",
            interactions=magazine.source,
        )
    with pytest.raises(ConfigError, match="trained on amazon data, not on movielens"):
        score_file(magazine.scorer, source, tmp_path / "y.parquet", dataset="movielens")


def test_movielens_histories_and_profiles_come_from_the_raw_files(movielens_100k: Path) -> None:
    """ML-100K: profiles looked up by user, histories as training's (cut at 20) without ties."""
    data = ingest("movielens", movielens_100k)
    raw = raw_samples(data, seed=SEED, max_len=20, split="test")
    profiles = ["age", "gender", "occupation"]
    requests = raw.select("user_id", "item_id", "timestamp")
    built = user_context(requests, data, {"history_item_id": "item_id"}, profiles, max_len=20)
    assert built.select(profiles).equals(raw.select(profiles))
    clean = ~same_second_rows(data, raw)
    assert 1000 < clean.sum() < len(raw)  # users rate several films within a second
    expected = raw["history_item_id"].filter(clean).to_list()
    assert built["history_item_id"].filter(clean).to_list() == expected
    assert max(len(h) for h in expected) == 20  # the cut is exercised


def test_the_tie_rule_and_the_cut_on_a_hand_made_log() -> None:
    events = pl.DataFrame(
        {
            "user_id": ["u", "u", "u", "u", "v"],
            "item_id": ["a", "b", "c", "d", "z"],
            "timestamp": [10, 20, 20, 30, 5],
            "line": [0, 2, 1, 3, 4],  # c was logged before b
        }
    )
    log = EventLog.from_events(events, ["item_id"], "<events>")
    users = pl.Series(["u", "u", "u", "u", "v", "nobody"])
    times = np.array([20, 21, 31, 10, 6, 99])
    assert log.histories(users, times, max_len=10)["item_id"].to_list() == [
        ["a"],  # b and c share the impression's second: not earlier
        ["a", "c", "b"],  # ties among earlier events in line order
        ["a", "c", "b", "d"],
        [],  # strictly earlier
        ["z"],
        [],  # unknown user
    ]
    assert log.histories(users, times, max_len=2)["item_id"].to_list()[2] == ["b", "d"]


def test_profile_values_are_looked_up_by_user() -> None:
    users = pl.DataFrame({"user_id": ["1", "2"], "age": ["25", "35"], "gender": ["M", "F"]})
    found = profile_values(users, pl.Series([2, 3, 1]), ["age", "gender"])
    assert found.to_dict(as_series=False) == {
        "age": ["35", None, "25"],
        "gender": ["F", None, "M"],
    }


# -- bad rows --------------------------------------------------------------------------------
def broken_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Rows 3, 5 and 9 (1-based) broken: a bad timestamp, no item id, an unparsable history."""
    text = rows.head(12).with_columns(
        pl.col("history_item_id").list.join(" "), pl.col("timestamp").cast(pl.String)
    )
    timestamp = text["timestamp"].scatter(2, "yesterday")
    item = text["item_id"].scatter(4, None)
    history = text["history_item_id"].scatter(8, '["B00005N7SC", ')
    return text.with_columns(timestamp, item, history)


@pytest.mark.parametrize("fmt", ("csv", "jsonl"))
def test_a_bad_row_stops_the_run_naming_file_row_and_column(
    magazine: SimpleNamespace, tmp_path: Path, fmt: str
) -> None:
    source = write(broken_rows(magazine.rows), tmp_path / f"rows.{fmt}")
    out = tmp_path / "scored.parquet"
    with pytest.raises(BadRow) as failed:
        score_file(magazine.scorer, source, out, progress="none")
    message = str(failed.value)
    assert message.startswith(f"{source}: row 3: column 'timestamp': expected unix seconds")
    assert "got 'yesterday'" in message and "\n" not in message
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def test_a_broken_json_line_is_a_bad_row(magazine: SimpleNamespace, tmp_path: Path) -> None:
    source = write(magazine.rows.head(6), tmp_path / "rows.jsonl")
    lines = source.read_text().splitlines()
    lines[3] = lines[3][:40]  # a truncated record
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRow, match=r"rows.jsonl: row 4: expected a JSON object"):
        score_file(magazine.scorer, source, tmp_path / "out.parquet")
    result = score_file(
        magazine.scorer, source, tmp_path / "out.parquet", on_bad_lines="skip", progress="none"
    )
    assert (result.scored, result.skipped) == (5, 1)
    np.testing.assert_allclose(
        read(tmp_path / "out.parquet")["score"].to_numpy(),
        np.delete(magazine.expected[:6], 3),
        atol=PARITY,
    )


def test_skip_sets_bad_rows_aside_and_scores_the_rest(
    magazine: SimpleNamespace, tmp_path: Path
) -> None:
    source = write(broken_rows(magazine.rows), tmp_path / "rows.csv")
    out = tmp_path / "scored.jsonl"
    result = score_file(magazine.scorer, source, out, on_bad_lines="skip", progress="none")
    assert (result.rows, result.scored, result.skipped) == (12, 9, 3)
    assert result.rejects == rejects_path(out) == tmp_path / "scored.jsonl.rejects.jsonl"
    assert "skipped 3 bad rows" in result.summary()
    rejects = pl.read_ndjson(result.rejects)
    assert rejects["row"].to_list() == [3, 5, 9]
    assert rejects["column"].to_list() == ["timestamp", "item_id", "history_item_id"]
    assert rejects["reason"][1].startswith("expected the candidate's item id")
    good = np.delete(np.arange(12), [2, 4, 8])
    scored = read(out)
    assert scored["item_id"].to_list() == magazine.rows["item_id"].gather(good).to_list()
    np.testing.assert_allclose(
        scored["score"].to_numpy(), magazine.expected[good], rtol=0, atol=PARITY
    )


def test_a_missing_column_is_an_error_even_when_skipping(
    magazine: SimpleNamespace, tmp_path: Path
) -> None:
    source = write(magazine.rows.drop("item_id"), tmp_path / "rows.parquet")
    with pytest.raises(DataError, match=r"rows.parquet: column 'item_id': expected a column"):
        score_file(magazine.scorer, source, tmp_path / "out.csv", on_bad_lines="skip")
    wrong = write(
        magazine.rows.with_columns(pl.lit(True).alias("timestamp")), tmp_path / "b.parquet"
    )
    with pytest.raises(DataError, match=r"column 'timestamp'.*got a column of Boolean"):
        score_file(magazine.scorer, wrong, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# -- the output file -------------------------------------------------------------------------
def test_an_existing_output_is_replaced_only_with_force(
    magazine: SimpleNamespace, tmp_path: Path
) -> None:
    source = write(magazine.rows.head(20), tmp_path / "rows.parquet")
    out = tmp_path / "scored.csv"
    out.write_text("my notes\n")
    with pytest.raises(OutputRefused, match="exists; pass --force"):
        score_file(magazine.scorer, source, out)
    assert out.read_text() == "my notes\n"
    score_file(magazine.scorer, source, out, force=True, progress="none")
    assert read(out).height == 20
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    link = tmp_path / "link.csv"
    link.symlink_to(out)
    for never in (folder, link, source):
        with pytest.raises(OutputRefused):
            score_file(magazine.scorer, source, never, force=True)
    assert source.is_file() and read(out).height == 20
    with pytest.raises(ConfigError, match="unknown file type '.txt'"):
        score_file(magazine.scorer, source, tmp_path / "scored.txt")


def test_a_failure_mid_run_leaves_no_partial_file(
    magazine: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(magazine.rows, tmp_path / "rows.parquet")
    out = tmp_path / "scored.parquet"
    out.write_bytes(b"the previous output")
    real = magazine.scorer.score
    calls = []

    def failing(frame: pl.DataFrame) -> np.ndarray:
        calls.append(frame.height)
        if len(calls) == 3:
            raise RuntimeError("killed mid-run")
        return real(frame)

    monkeypatch.setattr(magazine.scorer, "score", failing)
    with pytest.raises(RuntimeError, match="killed mid-run"):
        score_file(magazine.scorer, source, out, force=True, progress="log", chunk_rows=100)
    assert out.read_bytes() == b"the previous output"
    assert sorted(os.listdir(tmp_path)) == ["rows.parquet", "scored.parquet"]  # no temporary

    def failing_write(*args, **kwargs) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(magazine.scorer, "score", real)
    monkeypatch.setattr("din_model.serving.batch.write_rows", failing_write)
    fresh = tmp_path / "fresh.parquet"
    with pytest.raises(WriteFailed, match="no space left on device"):
        score_file(magazine.scorer, source, fresh, progress="none")
    assert sorted(os.listdir(tmp_path)) == ["rows.parquet", "scored.parquet"]
