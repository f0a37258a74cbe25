"""Batch scoring of a file of raw impressions: ``din score`` without MLflow or Prefect.

A file of raw requests (the owner-form schema of :mod:`din_model.data.samples.raw_inputs`:
``item_id``, ``timestamp``, the profile columns of the model, ``history_item_id``, ...) is
read, every row is checked, the good rows are scored in chunks with
:class:`~din_model.serving.raw_scorer.RawScorer` (the core of the registered model, so a
row scores here exactly as the served model scores it) and the input rows are written back
with a ``score`` column.

Formats, chosen by the file extension: ``.parquet``; ``.csv`` (a header row; every cell is
read as text); ``.jsonl``/``.ndjson``/``.json`` (JSON lines, one object per line). A history
cell that is text (always in CSV) holds the raw item ids **separated by spaces**, oldest
first (``B000001 B000002``), or a JSON list of ids (``["B000001", "B000002"]``); an empty
cell is an empty history. In CSV output a list column is written the same way (ids
separated by spaces), so an output file can be scored again.

``interactions`` (a raw data folder of the model's dataset, read with its adapter, which
stops at a bad line there) builds every row's history from the user's earlier events
instead, and fills profile columns the file leaves out (:mod:`din_model.serving.histories`
has the rule, ties included); the file then needs ``user_id`` and must not carry the
history columns.

Rows are numbered from 1 in file order (in CSV the header is not a row; in JSON lines the
N-th record). A bad row (a missing candidate ``item_id`` or ``timestamp``, an id that is a
fraction, a timestamp that is not unix seconds in the window the readers accept, a history
that does not parse) stops the run with one line naming the file, the row, the column and
what was expected (``on_bad_lines="error"``), or is set aside with ``"skip"``: written to
``<out>.rejects.jsonl`` (``row``, ``column``, ``reason``, ``got``; one record per problem)
and left out of the output. Missing profile values are not bad: they encode to OOV, as in
training. A missing or wrongly typed column is always an error naming the column.

The output is written to a temporary sibling and renamed, so it is complete or absent. An
existing ``out`` is replaced only with ``force``; a folder, a link or anything but a regular
file there, or the input itself, never.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from din_model.data.samples.raw_inputs import TIMESTAMP, USER_ID, RawInput
from din_model.data.specs.spec import ITEM_KEY_SOURCE
from din_model.errors import ConfigError, DataError
from din_model.io.atomic import atomic_output_file
from din_model.io.failures import writing
from din_model.io.output_dir import claim_output_file
from din_model.serving.batch_files import file_format, read_rows, rejects_path, write_rows
from din_model.serving.batch_rows import (
    EXPECT_ITEM,
    EXPECT_TIMESTAMP,
    EXPECT_USER,
    BadRow,
    RowChecks,
    history_lists,
    id_text,
    unix_seconds,
)
from din_model.serving.histories import user_context
from din_model.serving.raw_scorer import RawScorer

logger = logging.getLogger(__name__)

CHUNK_ROWS = 50_000
SCORE_COLUMN = "score"
ON_BAD_LINES = ("error", "skip")
PROGRESS_MODES = ("auto", "bar", "log", "none")


@dataclass(frozen=True)
class BatchResult:
    """What one batch run read, scored, skipped and wrote."""

    input: Path
    out: Path
    rows: int
    scored: int
    skipped: int
    rejects: Path | None
    seconds: float
    history_from: str = "input"  # "input", or the interactions folder the histories came from
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        seconds = self.timings.get("score", self.seconds)
        return self.scored / max(seconds, 1e-3) if self.scored else 0.0

    def summary(self) -> str:
        line = (
            f"scored {self.scored} of {self.rows} rows of {self.input} -> {self.out} in "
            f"{self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s scoring)"
        )
        if self.skipped:
            line += f"; skipped {self.skipped} bad rows -> {self.rejects}"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "out": str(self.out),
            "rows": self.rows,
            "scored": self.scored,
            "skipped": self.skipped,
            "rejects": None if self.rejects is None else str(self.rejects),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "history_from": self.history_from,
        }


# -- the run ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """Which file columns a model needs, and how each is read."""

    columns: dict[str, str]  # column -> id | timestamp | history
    required: list[str]  # columns the file must have
    per_row: dict[str, str]  # columns whose every row needs a value -> what to expect
    built: list[RawInput]  # history inputs built from the interactions
    looked_up: list[str]  # profile columns filled from the users table when absent


def plan_request(inputs: Sequence[RawInput], frame_columns: Sequence[str], events: bool) -> Request:
    """The columns to read for ``inputs``; ``events``: histories come from interactions."""
    columns: dict[str, str] = {}
    required: list[str] = []
    built: list[RawInput] = []
    looked_up: list[str] = []
    for raw in inputs:
        kind = "timestamp" if raw.derived else "history" if raw.kind == "sequence" else "id"
        if events and raw.kind == "sequence":
            if raw.required:
                built.append(raw)
            continue
        if events and raw.group == "user_profile" and raw.column not in frame_columns:
            looked_up.append(raw.column)
            continue
        if raw.required:
            required.append(raw.column)
        if raw.required or raw.column in frame_columns:
            columns[raw.column] = kind
    per_row = {ITEM_KEY_SOURCE: EXPECT_ITEM, TIMESTAMP: EXPECT_TIMESTAMP}
    if events:
        required += [USER_ID, TIMESTAMP]
        columns[USER_ID] = "id"
        columns.setdefault(TIMESTAMP, "timestamp")
        per_row[USER_ID] = EXPECT_USER
    return Request(columns, list(dict.fromkeys(required)), per_row, built, looked_up)


def _check_columns(path: Path, frame: pl.DataFrame, request: Request, events: bool) -> None:
    for column in request.required:
        if column not in frame.columns:
            raise DataError(
                path,
                f"a column '{column}' (the model needs {', '.join(request.required)})",
                column=column,
                got="no such column",
            )
    if events:
        present = [r.column for r in request.built if r.column in frame.columns]
        if present:
            raise ConfigError(
                f"{path} has the history column(s) {', '.join(present)} and histories are "
                "built from --interactions: drop the column(s) or leave out --interactions"
            )
    if SCORE_COLUMN in frame.columns:
        raise ConfigError(
            f"{path} already has a '{SCORE_COLUMN}' column; drop or rename it before scoring"
        )


def normalise(frame: pl.DataFrame, request: Request, checks: RowChecks) -> pl.DataFrame:
    """The model's columns in the encoder's types (ids as text, Int64 seconds, id lists)."""
    columns = []
    for column, kind in request.columns.items():
        values = frame[column]
        if kind == "timestamp":
            columns.append(unix_seconds(values, checks))
        elif kind == "history":
            columns.append(history_lists(values, column, checks))
        else:
            columns.append(id_text(values, column, checks, required=request.per_row.get(column)))
    return pl.DataFrame(columns)


def progress_mode(setting: str) -> str:
    """``auto``: a bar on a terminal, log lines otherwise (as ``train.progress``)."""
    if setting not in PROGRESS_MODES:
        choices = ", ".join(PROGRESS_MODES)
        raise ConfigError(f"progress: unknown '{setting}'; choose one of {choices}")
    if setting == "auto":
        return "bar" if sys.stderr.isatty() else "log"
    return setting


def score_chunks(
    scorer: RawScorer, frame: pl.DataFrame, chunk_rows: int, progress: str
) -> np.ndarray:
    """Scores of every row, ``chunk_rows`` at a time, with a bar or a few log lines."""
    rows = frame.height
    scores = np.empty(rows, dtype=np.float64)
    mode = progress_mode(progress)
    bar = tqdm(
        total=rows,
        desc="scoring",
        unit="row",
        unit_scale=True,
        leave=False,
        file=sys.stderr,
        disable=mode != "bar",
    )
    next_log = rows // 10
    started = time.perf_counter()
    for start in range(0, rows, chunk_rows):
        stop = min(rows, start + chunk_rows)
        scores[start:stop] = scorer.score(frame.slice(start, stop - start))
        bar.update(stop - start)
        if mode == "log" and stop >= next_log and stop < rows:
            rate = stop / max(time.perf_counter() - started, 1e-9)
            logger.info(
                "scored %d/%d rows (%.0f%%), %.0f rows/s", stop, rows, 100 * stop / rows, rate
            )
            next_log = stop + rows // 10
    bar.close()
    return scores


def _write_rejects(problems: pl.DataFrame, target: Path) -> None:
    records = problems.select(
        "row", "column", ("expected " + pl.col("expected")).alias("reason"), "got"
    )
    with writing(target), atomic_output_file(target) as tmp:
        records.write_ndjson(tmp)


def check_paths(
    input_path: str | Path,
    out: str | Path,
    *,
    interactions: str | Path | None = None,
    on_bad_lines: str = "error",
    force: bool = False,
    progress: str = "auto",
) -> str:
    """Refuse what :func:`score_file` would refuse of its options and paths; the out format.

    Cheap, and called again by :func:`score_file`: a caller that must fetch a model
    first (``din score``) calls it before, so that a typo costs no download.
    """
    input_path, out = Path(input_path), Path(out)
    if on_bad_lines not in ON_BAD_LINES:
        raise ConfigError(
            f"on_bad_lines must be one of {', '.join(ON_BAD_LINES)}, got {on_bad_lines!r}"
        )
    progress_mode(progress)
    out_format = file_format(out, "output")
    fmt = file_format(input_path, "input")
    if not input_path.is_file():
        what = "a folder" if input_path.is_dir() else "no such file"
        raise DataError(input_path, f"a {fmt} file of raw requests", got=what)
    if interactions is not None and not Path(interactions).exists():
        raise DataError(interactions, "the raw data folder of the dataset", got="no such folder")
    sources = [input_path] + ([Path(interactions)] if interactions is not None else [])
    for target in (out, rejects_path(out)) if on_bad_lines == "skip" else (out,):
        claim_output_file(target, force=force, sources=sources)
    return out_format


def score_file(
    scorer: RawScorer,
    input_path: str | Path,
    out: str | Path,
    *,
    interactions: str | Path | None = None,
    dataset: str | None = None,
    on_bad_lines: str = "error",
    force: bool = False,
    progress: str = "auto",
    chunk_rows: int = CHUNK_ROWS,
) -> BatchResult:
    """Score the rows of ``input_path`` into ``out`` (see the module doc); all or nothing.

    ``interactions``: a raw data folder of the model's dataset to build histories from
    (``dataset``, when given, must be the model's). ``progress``: auto | bar | log | none.
    Everything that can be refused (options, the output paths, columns, in error mode
    the rows) is refused before the interactions are read or anything is scored.
    """
    started = time.perf_counter()
    input_path, out = Path(input_path), Path(out)
    events = interactions is not None
    options = {"on_bad_lines": on_bad_lines, "force": force, "progress": progress}
    out_format = check_paths(input_path, out, interactions=interactions, **options)
    if chunk_rows < 1:
        raise ConfigError(f"chunk rows must be >= 1, got {chunk_rows}")
    model_dataset = scorer.encoder.feature_map.dataset
    if dataset is not None and dataset != model_dataset:
        raise ConfigError(f"the model was trained on {model_dataset} data, not on {dataset}")
    rejects = rejects_path(out)
    timings: dict[str, float] = {}

    frame, row_numbers, unreadable = read_rows(input_path)
    timings["read"] = time.perf_counter() - started
    request = plan_request(scorer.encoder.inputs, frame.columns, events)
    checks = RowChecks(input_path, row_numbers)
    checks.found.append(unreadable)
    if frame.width or unreadable.is_empty():  # a file of nothing but broken records has none
        _check_columns(input_path, frame, request, events)
        requests = normalise(frame, request, checks)
    else:
        requests = pl.DataFrame()
    problems = checks.problems()
    if not problems.is_empty() and on_bad_lines == "error":
        first = problems.row(0, named=True)
        raise BadRow(
            input_path, first["row"], first["expected"], column=first["column"], got=first["got"]
        )
    skipped = int(problems["row"].n_unique())
    if skipped and frame.height:
        keep = pl.Series(~np.isin(row_numbers, problems["row"].to_numpy()))
        frame, requests = frame.filter(keep), requests.filter(keep)
    if events and frame.height:
        mark = time.perf_counter()
        requests = _with_user_context(requests, request, model_dataset, interactions, scorer)
        timings["histories"] = time.perf_counter() - mark

    mark = time.perf_counter()
    scores = score_chunks(scorer, requests, chunk_rows, progress) if frame.height else np.empty(0)
    timings["score"] = time.perf_counter() - mark
    output = frame.with_columns(pl.Series(SCORE_COLUMN, scores, dtype=pl.Float64))
    with writing(out), atomic_output_file(out) as tmp:
        write_rows(output, tmp, out_format)
        if skipped:
            _write_rejects(problems, rejects)
        elif on_bad_lines == "skip" and os.path.lexists(rejects):
            rejects.unlink()  # an earlier run's rejects (claimed above): this run has none
    if skipped:
        logger.warning("%s: skipped %d bad rows, written to %s", input_path.name, skipped, rejects)
    return BatchResult(
        input=input_path,
        out=out,
        rows=frame.height + skipped,
        scored=frame.height,
        skipped=skipped,
        rejects=rejects if skipped else None,
        seconds=time.perf_counter() - started,
        history_from=str(interactions) if events else "input",
        timings={k: round(v, 3) for k, v in timings.items()},
    )


def _with_user_context(
    requests: pl.DataFrame,
    request: Request,
    dataset: str,
    interactions: str | Path,
    scorer: RawScorer,
) -> pl.DataFrame:
    """Histories (and left-out profile values) from the dataset's raw files."""
    from din_model.data.adapters import ingest

    data = ingest(dataset, interactions)
    histories = {raw.column: raw.source for raw in request.built}
    return user_context(requests, data, histories, request.looked_up, scorer.encoder.max_len)
