"""The benchmark's outputs: FILE.json (machine + results) and FILE.md (a table).

:func:`check_report` is the schema both the harness and the tests hold the
JSON to: every result has the issue's keys, with a number or null.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from din_model.errors import DataError
from din_model.io.atomic import atomic_output_file, write_json_atomic

RESULT_KEYS = (
    "name",
    "dataset",
    "model",
    "device",
    "batch",
    "emb",
    "max_len",
    "train_samples_per_s",
    "infer_samples_per_s",
    "gauc",
    "peak_mem_mb",
)
NUMBER_KEYS = RESULT_KEYS[4:]
MACHINE_KEYS = ("cpu", "cores", "gpu", "torch")


def check_report(report: dict[str, Any], source: str | Path = "bench report") -> None:
    """Raise DataError unless ``report`` has ``machine`` and well-formed ``results``."""
    machine = report.get("machine")
    if not isinstance(machine, dict) or any(key not in machine for key in MACHINE_KEYS):
        raise DataError(source, f"a 'machine' object with {', '.join(MACHINE_KEYS)}")
    results = report.get("results")
    if not isinstance(results, list) or not results:
        raise DataError(source, "a non-empty list 'results'")
    for number, entry in enumerate(results):
        missing = [key for key in RESULT_KEYS if key not in entry]
        if missing:
            raise DataError(source, f"result {number} with the keys {', '.join(missing)}")
        for key in NUMBER_KEYS:
            value = entry[key]
            ok = value is None or (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not ok:
                raise DataError(
                    source, f"result {number}: '{key}' a number or null", got=repr(value)
                )


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown(report: dict[str, Any]) -> str:
    """A markdown table of the results with the machine above it."""
    m = report["machine"]
    lines = [
        f"# din bench ({report.get('mode', '?')}, device {report.get('device', '?')})",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores, {m.get('torch_threads')} torch threads)",
        f"- GPU: {m['gpu'] or 'none'}",
        f"- torch {m['torch']}, Python {m.get('python')}",
        f"- command: `{report.get('command', '')}`",
        f"- total {report.get('seconds', 0):.0f} s",
        "",
        "| case | device | batch | emb | max_len | train samples/s | infer samples/s | GAUC "
        "| peak MB | rows (train / infer) | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in report["results"]:
        if r.get("kind") == "prepare":
            notes = f"{r['seconds']:.1f} s wall, validated: {str(r['validated']).lower()}"
            rows = f"{r.get('train_rows', 0):,} train samples"
        elif r.get("kind") == "run":
            notes = f"fit, select, score test: {r['seconds']:.1f} s wall, GAUC is test"
            rows = "whole splits"
        else:
            opts = r.get("options") or {}
            on = [k for k in ("compile", "cuda_graphs", "tf32") if opts.get(k)]
            if opts.get("amp") not in (None, "none"):
                on.append(f"amp={opts['amp']}")
            notes = ", ".join(on) or "eager"
            rows = f"{_fmt(r.get('train_rows'))} / {_fmt(r.get('infer_rows'))}"
        lines.append(
            f"| {r['name']} | {r['device']} | {_fmt(r['batch'])} | {_fmt(r['emb'])} "
            f"| {_fmt(r['max_len'])} | {_fmt(r['train_samples_per_s'])} "
            f"| {_fmt(r['infer_samples_per_s'])} | {_fmt(r['gauc'], 4)} "
            f"| {_fmt(r['peak_mem_mb'])} | {rows} | {notes} |"
        )
    lines += [
        "",
        "peak MB: GPU memory allocated on cuda, process RSS on cpu (both are in the JSON).",
        "",
    ]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: Path) -> Path:
    """Write ``out`` (JSON) and the table next to it (same name, ``.md``); return the latter."""
    check_report(report, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, report)
    table = out.with_suffix(".md")
    with atomic_output_file(table) as tmp:
        tmp.write_text(markdown(report))
    return table
