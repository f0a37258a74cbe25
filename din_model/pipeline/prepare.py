"""``din prepare``: raw files -> validated DIN samples, as step functions.

Each step is a plain function so that the Prefect flow can wrap them one by
one (and the CLI can call :func:`prepare_dataset`, which composes them):

    ingest -> validate_canonical -> build_samples -> validate_samples -> write_prepared

Nothing is written until every check passed, and then atomically: OUT either
holds a complete prepared directory or is left as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from din_model.data.canonical.schema import UNKNOWN_CATEGORY, CanonicalData
from din_model.data.encoding.coded import CodedData, code_canonical
from din_model.data.encoding.hashing import DEFAULT_HASH_SEED, check_buckets, resolve_hash_tables
from din_model.data.encoding.vocabulary import write_vocabularies
from din_model.data.protocols import run_protocol
from din_model.data.protocols.base import ProtocolResult
from din_model.data.samples.build import PreparedData, ServingTables, assemble
from din_model.data.samples.raw_inputs import (
    EXAMPLE_FILE,
    ITEMS_FILE,
    SERVING_DIR,
    item_table,
    raw_inputs,
    write_raw_inputs,
)
from din_model.data.samples.raw_view import raw_rows
from din_model.data.specs.feature_map import FEATURE_MAP_FILE, SPLITS
from din_model.data.specs.spec import DatasetSpec, spec_for_layout
from din_model.errors import ConfigError, DataError
from din_model.io.atomic import write_json_atomic
from din_model.io.fingerprint import fingerprint_files
from din_model.io.output_dir import claim_output_dir, replace_output_dir
from din_model.pipeline.layout import PREPARE_REPORT

log = logging.getLogger(__name__)

VALIDATION_FILE = "validation.json"
REJECTS_DIR = "rejects"
ON_BAD_LINES = ("error", "skip")
EXAMPLE_ROWS = 5  # raw test rows kept as the served model's input example

__all__ = [
    "PreparedData",
    "build_samples",
    "load_prepared_report",
    "prepare_dataset",
    "raw_samples",
    "validate_canonical",
    "validate_samples",
    "write_prepared",
]


def _timed(step: str, started: float) -> float:
    seconds = round(time.perf_counter() - started, 3)
    log.info("%s done in %.2f s", step, seconds)
    return seconds


def _checked_max_len(max_len: int) -> int:
    if max_len < 1:
        raise ConfigError(f"--max-len must be a positive integer, got {max_len}")
    return max_len


def validate_canonical(data: CanonicalData) -> dict[str, Any]:
    """Great Expectations on the canonical tables; raises ValidationFailed."""
    from din_model.validation import validate_canonical_tables

    started = time.perf_counter()
    outcome = validate_canonical_tables(data)
    outcome["seconds"] = _timed("validate canonical", started)
    return outcome


def _sample_index(
    data: CanonicalData, spec: DatasetSpec, seed: int, max_len: int, timings: dict[str, float]
) -> tuple[CodedData, ProtocolResult]:
    """Coded tables and the protocol's sample index: what the splits are encoded from."""
    started = time.perf_counter()
    coded = code_canonical(data, spec)
    timings["encode_ids"] = _timed("encode ids", started)
    started = time.perf_counter()
    result = run_protocol(coded, seed=seed, max_len=max_len)
    timings["protocol"] = _timed(f"protocol {spec.protocol}", started)
    return coded, result


def build_samples(
    data: CanonicalData,
    *,
    seed: int = 42,
    max_len: int | None = None,
    hash_buckets: dict[str, int] | None = None,
    hash_seed: int = DEFAULT_HASH_SEED,
) -> PreparedData:
    """Sample with the layout's protocol, learn train vocabularies, encode the three splits.

    ``hash_buckets`` ({table or table without ``_id``: buckets}) hashes those
    tables into a fixed number of ids instead (:mod:`din_model.data.encoding.hashing`).
    """
    spec = spec_for_layout(data.layout)
    max_len = spec.max_len if max_len is None else _checked_max_len(max_len)
    hashed = resolve_hash_tables(hash_buckets, spec.tables)
    timings: dict[str, float] = {}
    coded, result = _sample_index(data, spec, seed, max_len, timings)
    started = time.perf_counter()
    prepared = assemble(
        coded,
        result,
        dataset=data.dataset,
        layout=data.layout,
        max_len=max_len,
        synthetic=data.synthetic,
        hash_buckets=hashed,
        hash_seed=hash_seed,
    )
    timings["assemble"] = _timed("assemble splits", started)
    prepared.timings.update(timings)
    prepared.serving = serving_tables(data, coded, result)

    interactions = data.interactions
    adapter = dict(data.report)
    prepared.report = {
        "dataset": data.dataset,
        "layout": data.layout,
        "spec": spec.family,
        "protocol": spec.protocol,
        "seed": seed,
        "max_len": max_len,
        "synthetic": data.synthetic,
        "fingerprint": fingerprint_files(data.source_files),
        "source_files": [str(p) for p in data.source_files],
        "interactions": len(interactions),
        "users": interactions["user_id"].n_unique(),
        "items": len(data.items),
        "unknown_categories": int((data.items["category"] == UNKNOWN_CATEGORY).sum()),
        "rejected_lines": int(adapter.get("rejected_lines", 0) or 0),
        "duplicates_dropped": dict(adapter.get("duplicates_dropped") or {}),
        **prepared.report,
        "adapter": adapter,
    }
    prepared.feature_map.extra["fingerprint"] = prepared.report["fingerprint"]
    return prepared


def serving_tables(data: CanonicalData, coded: CodedData, result: ProtocolResult) -> ServingTables:
    """What a served model needs to take raw requests: schema, item table, raw test rows."""
    inputs = raw_inputs(coded.spec, data)
    example = raw_rows(coded, result, inputs, "test", EXAMPLE_ROWS).drop("label")
    return ServingTables(inputs, item_table(data, inputs), example)


def raw_samples(
    data: CanonicalData, *, seed: int, max_len: int | None = None, split: str = "test"
) -> pl.DataFrame:
    """The samples of ``split`` as raw requests (plus ``label``), in prepared row order.

    The same protocol run as :func:`build_samples` with the same ``seed`` and
    ``max_len``, decoded to the canonical tables' raw values instead of encoded: row
    ``i`` is the raw request of row ``i`` of ``<split>.parquet``. This is how the
    served model is checked against training (no training/serving skew).
    """
    spec = spec_for_layout(data.layout)
    length = spec.max_len if max_len is None else _checked_max_len(max_len)
    coded, result = _sample_index(data, spec, seed, length, {})
    return raw_rows(coded, result, raw_inputs(coded.spec, data), split)


def write_serving_tables(folder: Path, serving: ServingTables) -> None:
    folder.mkdir()
    write_raw_inputs(folder, serving.inputs)
    serving.items.write_parquet(folder / ITEMS_FILE)
    serving.example.write_parquet(folder / EXAMPLE_FILE)


def validate_samples(prepared: PreparedData) -> dict[str, Any]:
    """Great Expectations on every split; raises ValidationFailed."""
    from din_model.validation import validate_sample_splits

    started = time.perf_counter()
    outcome = validate_sample_splits(prepared)
    outcome["seconds"] = _timed("validate samples", started)
    return outcome


def write_prepared(
    prepared: PreparedData,
    out: Path,
    validation: dict[str, Any],
    *,
    force: bool = False,
    sources: tuple[str | Path, ...] = (),
) -> Path:
    """Write splits, feature map, vocabularies, validation and report; all or nothing.

    Everything goes into a temporary sibling of ``out`` that replaces it only
    once complete. ``validation`` is what the two validation steps returned,
    keyed by stage (or a single stage's result). ``out`` must be new, empty or
    an earlier output of ours, which is replaced only with ``force``
    (:mod:`din_model.io.output_dir`); it may not overlap ``sources``.
    """
    out = Path(out)
    started = time.perf_counter()
    with replace_output_dir(out, command="prepare", force=force, sources=sources) as tmp:
        for name in SPLITS:
            prepared.splits[name].write_parquet(tmp / f"{name}.parquet")
        prepared.feature_map.save(tmp / FEATURE_MAP_FILE)
        write_vocabularies(tmp, prepared.vocabularies, prepared.user_key)
        if prepared.serving is not None:
            write_serving_tables(tmp / SERVING_DIR, prepared.serving)
        write_json_atomic(tmp / VALIDATION_FILE, validation)
        report = dict(prepared.report)
        if prepared.rejects_dir is not None and Path(prepared.rejects_dir).is_dir():
            shutil.copytree(prepared.rejects_dir, tmp / REJECTS_DIR)
            # name the copies, not the staging folder that is deleted after the run
            report["rejects_files"] = sorted(
                f"{REJECTS_DIR}/{p.name}" for p in (tmp / REJECTS_DIR).iterdir()
            )
            report["adapter"] = {
                **report.get("adapter", {}),
                "rejects_files": report["rejects_files"],
            }
        timings = dict(prepared.timings)
        for stage, outcome in validation.items():
            if isinstance(outcome, dict) and "seconds" in outcome:
                timings[f"validate_{stage}"] = outcome["seconds"]
        timings["write"] = round(time.perf_counter() - started, 3)
        stages = [v for v in validation.values() if isinstance(v, dict) and "success" in v]
        report.update(timings=timings, validation_success=all(v["success"] for v in stages))
        write_json_atomic(tmp / PREPARE_REPORT, report)
    log.info("wrote %s in %.2f s", out, time.perf_counter() - started)
    return out


def load_prepared_report(out: str | Path) -> dict[str, Any]:
    """The ``prepare_report.json`` of a prepared directory."""
    path = Path(out) / PREPARE_REPORT
    if not path.is_file():
        raise DataError(path, "a prepared directory written by `din prepare`", got="no report")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(path, "valid JSON", line=exc.lineno, got=exc.msg) from exc


def prepare_dataset(
    dataset: str,
    source: str | Path,
    out: str | Path,
    *,
    seed: int = 42,
    max_len: int | None = None,
    on_bad_lines: str = "error",
    hash_buckets: dict[str, int] | None = None,
    hash_seed: int = DEFAULT_HASH_SEED,
    force: bool = False,
) -> dict[str, Any]:
    """The whole chain; returns the prepare report. A failure leaves ``out`` untouched.

    ``out`` is checked before anything is read: it must be new, empty or an
    earlier output of ours (replaced only with ``force``), and neither be,
    lie inside nor contain ``source``.

    ``hash_buckets`` hashes the named tables into that many ids (see
    :func:`build_samples`); the report's ``hashing`` section counts collisions.

    With ``on_bad_lines="skip"`` the adapters move bad lines to rejects files,
    staged in a hidden sibling of ``out`` and copied to ``OUT/rejects/``.
    """
    from din_model.data.adapters import ingest

    if on_bad_lines not in ON_BAD_LINES:
        raise ConfigError(f"--on-bad-lines must be one of {ON_BAD_LINES}, got {on_bad_lines!r}")
    if max_len is not None:
        _checked_max_len(max_len)  # fail before reading anything
    for table, buckets in (hash_buckets or {}).items():
        check_buckets(f"hash buckets of {table!r}", buckets)
    out = Path(out)
    claim_output_dir(out, command="prepare", force=force, sources=[source])
    staging = None
    if on_bad_lines == "skip":
        staging = out.parent / f".{out.name}.rejects-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        started = time.perf_counter()
        data = ingest(dataset, source, on_bad_lines=on_bad_lines, rejects_dir=staging)
        ingest_seconds = _timed(f"ingest {dataset} ({data.layout})", started)
        canonical = validate_canonical(data)
        prepared = build_samples(
            data, seed=seed, max_len=max_len, hash_buckets=hash_buckets, hash_seed=hash_seed
        )
        prepared.timings = {"ingest": ingest_seconds, **prepared.timings}
        prepared.rejects_dir = staging
        samples = validate_samples(prepared)
        validation = {"canonical": canonical, "samples": samples}
        write_prepared(prepared, out, validation, force=force, sources=(source,))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return load_prepared_report(out)
