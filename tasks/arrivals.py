"""Data steps of an arriving source: per-arrival ingestion, the training set, the fresh slice.

An arriving source (:mod:`din_model.data.sources.arrivals`) is read one arrival
at a time by ``ingest-arrival``, cached on that arrival's content (plus the
static files', ``on_bad_lines`` and the work root): a scheduled run after a new
arrival parses only the new one, every older one comes back ``Cached``.

The newest arrival is held back. ``merge-arrivals`` writes the training set:
every older arrival merged and cut to the training window, saved as canonical
tables in a content-addressed folder under ``<work>/cache/canonical`` so the
existing ``validate-canonical`` and ``prepare-samples`` steps cache on it as on
a plain source's. ``fresh-slice`` writes the samples whose event lies in the
newest arrival as raw requests (histories from every earlier event, windowed
or not), the slice on which champion and challenger are judged.

As in :mod:`tasks.data`, cached results are folder paths (never tables), and a
step whose folder has been deleted since runs again (``refresh_cache``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from din_model.data.sources.arrivals import (
    ARRIVALS_DIR,
    Arrival,
    arrivals_fingerprint,
    list_arrivals,
    parse_window,
    static_fingerprint,
)
from din_model.errors import DataError
from tasks.caching import content_dir, step_key
from tasks.data import (
    IO_RETRIES,
    IO_RETRY_DELAYS,
    SourceSpec,
    output_missing,
    retry_on_io_error,
)

SLICE_FILE = "slice.parquet"
CANONICAL_MANIFEST = "canonical.json"  # din_model.data.canonical.store.MANIFEST


def _work(parameters: dict[str, Any]) -> str:
    return str(Path(parameters["work"]).resolve())


def ingest_arrival_key(context, parameters: dict[str, Any]) -> str:
    arrival: Arrival = parameters["arrival"]
    return step_key(
        "ingest-arrival",
        dataset=parameters["dataset"],
        arrival=arrival.fingerprint,
        static=parameters["static"],
        on_bad_lines=parameters.get("on_bad_lines", "error"),
        # the cached result is a folder under the work root: another root, another entry
        work=_work(parameters),
    )


def arrival_dir(work: str | Path, key: str) -> Path:
    return content_dir(Path(work) / "cache" / "arrivals", key)


@task(
    name="ingest-arrival",
    cache_key_fn=ingest_arrival_key,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
    task_run_name="ingest-arrival-{arrival.label}",
)
def ingest_arrival(
    dataset: str,
    source: str,
    arrival: Arrival,
    static: str,
    work: str,
    on_bad_lines: str = "error",
) -> str:
    """One arrival (with the static files) -> canonical tables under its cache key."""
    from din_model.data.adapters import ingest
    from din_model.data.canonical.store import save_canonical
    from din_model.data.sources.arrivals import read_arrival
    from tasks.data import rejects_dir

    parameters = {
        "dataset": dataset,
        "arrival": arrival,
        "static": static,
        "work": work,
        "on_bad_lines": on_bad_lines,
    }
    target = arrival_dir(work, ingest_arrival_key(None, parameters))
    rejects = rejects_dir(target) if on_bad_lines == "skip" else None
    data = read_arrival(
        dataset,
        Path(source),
        arrival,
        on_bad_lines=on_bad_lines,
        rejects_dir=rejects,
        ingest=ingest,
    )
    save_canonical(data, target)
    get_run_logger().info(
        "arrival %s: %d interactions, %d items, %d users -> %s",
        arrival.label,
        data.interactions.height,
        data.items.height,
        data.users.height,
        target,
    )
    return str(target)


def merge_key(context, parameters: dict[str, Any]) -> str:
    return step_key(
        "merge-arrivals",
        parts=[Path(part).name for part in parameters["parts"]],
        window=parameters.get("window_seconds"),
        work=_work(parameters),
    )


@task(
    name="merge-arrivals",
    cache_key_fn=merge_key,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
)
def merge_arrivals(parts: list[str], window_seconds: int | None, work: str) -> str:
    """The training arrivals merged (oldest first) and windowed, as one canonical folder."""
    from din_model.data.canonical.merge import keep_window, merge_canonical
    from din_model.data.canonical.store import load_canonical, save_canonical
    from tasks.data import canonical_dir

    key = merge_key(None, {"parts": parts, "window_seconds": window_seconds, "work": work})
    target = canonical_dir(Path(work), key)
    data = keep_window(merge_canonical([load_canonical(part) for part in parts]), window_seconds)
    save_canonical(data, target)
    get_run_logger().info(
        "training set: %d arrivals, %d interactions (%d left out by the window) -> %s",
        len(parts),
        data.interactions.height,
        int(data.report.get("window_dropped", 0)),
        target,
    )
    return str(target)


def slice_key(context, parameters: dict[str, Any]) -> str:
    return step_key(
        "fresh-slice",
        history=[Path(part).name for part in parameters["history"]],
        newest=Path(parameters["newest"]).name,
        seed=parameters["seed"],
        max_len=parameters.get("max_len"),
        work=_work(parameters),
    )


@task(
    name="fresh-slice",
    cache_key_fn=slice_key,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
)
def fresh_slice(history: list[str], newest: str, seed: int, max_len: int | None, work: str) -> str:
    """The newest arrival's samples as raw requests + ``label`` (parquet); returns the file."""
    from din_model.data.canonical.merge import merge_canonical
    from din_model.data.canonical.store import load_canonical
    from din_model.io.atomic import atomic_output_dir
    from din_model.pipeline.fresh_slice import fresh_slice_rows

    parameters = {
        "history": history,
        "newest": newest,
        "seed": seed,
        "max_len": max_len,
        "work": work,
    }
    folder = content_dir(Path(work) / "cache" / "arrival-slices", slice_key(None, parameters))
    rows = fresh_slice_rows(
        merge_canonical([load_canonical(part) for part in history]),
        load_canonical(newest),
        seed=seed,
        max_len=max_len,
    )
    with atomic_output_dir(folder) as tmp:
        rows.write_parquet(tmp / SLICE_FILE)
    get_run_logger().info(
        "held-back slice: %d samples of %d users -> %s",
        rows.height,
        rows["user_id"].n_unique(),
        folder / SLICE_FILE,
    )
    return str(folder / SLICE_FILE)


@dataclass
class ArrivalData:
    """What the flow needs from an arriving source (all JSON-ready but the paths' meaning).

    ``train_canonical``: canonical folder of every arrival but the newest, merged and
    windowed; ``slice_rows``: parquet of the newest arrival's samples as raw requests;
    ``used`` / ``held_back``: label, files and fingerprint of each arrival trained on /
    of the newest; ``parsed``: labels ingested by this call (the others were cached).
    """

    train_canonical: str
    slice_rows: str
    newest: str
    used: list[dict[str, Any]]
    held_back: dict[str, Any]
    arrivals_fingerprint: str
    family: str
    parsed: list[str] = field(default_factory=list)
    window_seconds: int | None = None


def _cached_call(step, marker: str | None, **parameters: Any) -> tuple[str, bool]:
    """Run ``step``; again with ``refresh_cache`` if its cached output has been deleted.

    Returns the output path and whether it came from the cache.
    """
    state = step(**parameters, return_state=True)
    path = state.result()
    if output_missing(path, marker) if marker else not Path(path).exists():
        state = step.with_options(refresh_cache=True)(**parameters, return_state=True)
        path = state.result()
    return path, state.name == "Cached"


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """The run's logger inside a flow or task run, the module's logger outside one."""
    from prefect.exceptions import MissingContextError

    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _family(canonical: str) -> str:
    from din_model.data.sources.family import data_family

    manifest = json.loads((Path(canonical) / CANONICAL_MANIFEST).read_text(encoding="utf-8"))
    return data_family(
        manifest["dataset"], manifest["layout"], manifest["source_files"], manifest["synthetic"]
    )


def assemble_arrival_data(
    spec: SourceSpec,
    work: str,
    *,
    seed: int,
    max_len: int | None,
    window: str | None,
    on_bad_lines: str = "error",
) -> ArrivalData:
    """Every arrival ingested (cached each), the training set and the newest slice.

    Needs at least two arrivals (older ones to train on, the newest held back).
    """
    window_seconds = parse_window(window)  # a bad window fails before any parsing
    source = Path(spec.path)
    arrivals = list_arrivals(source)
    if len(arrivals) < 2:
        labels = ", ".join(a.label for a in arrivals) or "none"
        raise DataError(
            source / ARRIVALS_DIR,
            "at least two arrivals: older ones to train on and the newest held back",
            got=f"{len(arrivals)} ({labels})",
        )
    static = static_fingerprint(source)
    folders, parsed = [], []
    for arrival in arrivals:
        folder, cached = _cached_call(
            ingest_arrival,
            CANONICAL_MANIFEST,
            dataset=spec.dataset,
            source=str(source),
            arrival=arrival,
            static=static,
            work=work,
            on_bad_lines=on_bad_lines,
        )
        folders.append(folder)
        if not cached:
            parsed.append(arrival.label)
    train, _ = _cached_call(
        merge_arrivals,
        CANONICAL_MANIFEST,
        parts=folders[:-1],
        window_seconds=window_seconds,
        work=work,
    )
    rows, _ = _cached_call(
        fresh_slice,
        None,
        history=folders[:-1],
        newest=folders[-1],
        seed=seed,
        max_len=max_len,
        work=work,
    )
    _logger().info(
        "arrivals: %d (%s parsed now), newest %s held back",
        len(arrivals),
        ", ".join(parsed) or "none",
        arrivals[-1].label,
    )
    return ArrivalData(
        train_canonical=train,
        slice_rows=rows,
        newest=arrivals[-1].label,
        used=[arrival.describe() for arrival in arrivals[:-1]],
        held_back=arrivals[-1].describe(),
        arrivals_fingerprint=arrivals_fingerprint(arrivals),
        family=_family(train),
        parsed=parsed,
        window_seconds=window_seconds,
    )
