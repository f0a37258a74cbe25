"""The ``din-replay`` flow: what scheduled retraining would have done over a dataset's history.

A real dataset's timeline is cut into arrivals (one per day, week or month, in the
owner's format, :mod:`din_model.data.sources.timeline_cut`), and the arrivals are
landed one at a time in a folder, as files land in a production drop folder. After
each landing (from the second on: a retrain needs older arrivals to train on and
the newest to judge on) the ``din-train`` flow runs once on that folder, as a
subflow: a real Prefect flow run and a real MLflow run, named with the trigger
``replay``, with the same champion/challenger head to head as a scheduled run.

The replay registers into its own model, ``din-<dataset>-replay-<id>``, so it never
moves the champion that something downstream serves. Its MLflow parent run holds the
timeline (``timeline.csv``) and its plot (``plots/timeline.png``,
:mod:`tasks.timeline_plot`): both models' GAUC on every new slice, promotions marked.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from din_model.data.sources.arrivals import list_arrivals
from din_model.data.sources.timeline_cut import cut_timeline, publish_next_arrival
from din_model.pipeline.promotion import load_policy
from din_model.registry import dataset_names
from flows.runtime import install_run_logging
from flows.train_flow import DEFAULT_SEED, din_train
from tasks import tracking
from tasks.config import check_choice
from tasks.git_info import git_info
from tasks.paths import work_root
from tasks.run_lifecycle import tracked_run
from tasks.run_report import publish_run_report
from tasks.timeline_plot import timeline_plot, timeline_row

REPLAYS_DIR = "replays"


def replay_name(dataset: str, source: str, every: str, model: str, regularizer: str) -> str:
    return f"replay:{dataset}:{Path(source).name}:every{every}:{model}+{regularizer}"


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    p = flow_run.parameters
    return replay_name(
        str(p.get("dataset")), str(p.get("source")), str(p.get("every")),
        str(p.get("model", "din")), str(p.get("regularizer", "none")),
    )  # fmt: skip


@flow(name="din-replay", flow_run_name=_flow_run_name)
def din_replay(
    dataset: str,
    source: str,
    every: str = "1w",
    start: str | None = None,
    limit: int | None = None,
    model: str = "din",
    regularizer: str = "none",
    overrides: list[str] | None = None,
    seed: int = DEFAULT_SEED,
    config_file: str | None = None,
    window: str | None = None,
    warm_start: bool = False,
    min_gain: float | None = None,
    logloss_tolerance: float | None = None,
    work_dir: str | None = None,
    plot_out: str | None = None,
) -> dict[str, Any]:
    """Cut ``source`` into arrivals every ``every`` and retrain once per arrival.

    Args:
        dataset: a registered dataset (movielens, amazon, ...).
        source: a plain folder of the owner's raw files (``../shared/data/movielens/ml-100k``).
        every: the arrival period: ``1d``, ``1w``, ``1m`` (calendar month).
        start: ISO date; everything before it is the first arrival (the initial history).
        limit: replay only the first N arrivals after the initial one.
        model, regularizer, overrides, seed, config_file, window, warm_start, min_gain,
            logloss_tolerance: passed to every ``din-train`` run (see :func:`din_train`).
        work_dir: where the arrivals, caches and runs go (default ``outputs/pipeline``).
        plot_out: also write the timeline plot there (the caller has claimed the path).
    """
    install_run_logging()
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    policy = load_policy({"min_gain": min_gain, "logloss_tolerance": logloss_tolerance})
    work = work_root(work_dir)
    replay_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    folder = work / REPLAYS_DIR / dataset / replay_id
    # the landing folder's name is the runs' source label: say what it holds
    source_name = Path(source).expanduser().resolve().name
    staging, landing = folder / "staging", folder / f"{source_name}-arrivals"
    cut_timeline(dataset, Path(source).expanduser().resolve(), staging,
                 every=every, start=start, limit=limit)  # fmt: skip
    registered = f"din-{dataset}-replay-{replay_id}"
    name = replay_name(dataset, source, every, model, regularizer)
    tags = {
        "dataset": dataset,
        "model": model,
        "regularizer": regularizer,
        "replay_every": every,
        "replay_source": str(source),
        "registered_model": registered,
        "trigger": "replay",
        **git_info().as_tags(),
    }
    rows = []
    with tracked_run(dataset, name, tags) as parent:
        while (arrival := publish_next_arrival(staging, landing)) is not None:
            if len(list_arrivals(landing)) < 2:
                logger.info("replay: %s landed (initial history)", arrival.label)
                continue
            logger.info("replay: %s landed; retraining", arrival.label)
            summary = din_train(
                dataset=dataset, source=str(landing), model=model, regularizer=regularizer,
                overrides=overrides, seed=seed, config_file=config_file, window=window,
                warm_start=warm_start, min_gain=min_gain, logloss_tolerance=logloss_tolerance,
                trigger="replay", registered_name=registered, work_dir=str(work),
            )  # fmt: skip
            row = timeline_row(arrival.label, summary)
            rows.append(row)
            if summary.get("run_id"):
                tracking.set_tags(summary["run_id"], {"replay_run_id": parent})
            logger.info("replay: %s -> %s", arrival.label, row.decision)
        result = log_timeline(parent, rows, name, policy.min_gain, plot_out)
    result.update(run_id=parent, registered_model=registered, arrivals_folder=str(landing))
    publish_run_report(
        parent,
        f"din-replay {dataset}: {name}",
        [(row.arrival, f"{'promoted' if row.promoted else 'kept'}: {row.decision}")
         for row in rows],
        key=f"din-replay-{dataset}",
    )  # fmt: skip
    return result


def log_timeline(
    parent: str, rows: list, title: str, min_gain: float, plot_out: str | None = None
) -> dict[str, Any]:
    """``timeline.csv``/``timeline.json`` and ``plots/timeline.png`` on the replay's run."""
    import polars as pl

    with tracking.scratch_dir() as scratch:
        out = Path(scratch)
        table = pl.DataFrame([row.as_dict() for row in rows])
        table.write_csv(out / "timeline.csv")
        (out / "timeline.json").write_text(json.dumps([r.as_dict() for r in rows], indent=2))
        files = [out / "timeline.csv", out / "timeline.json"]
        tracking.log_files(parent, files)
        if rows:
            plot = timeline_plot(rows, out / "timeline.png", title, min_gain)
            tracking.log_files(parent, [plot], "plots")
            if plot_out:
                timeline_plot(rows, Path(plot_out), title, min_gain)
    promotions = sum(row.promoted for row in rows)
    tracking.log_metrics(parent, {"retrains": len(rows), "promotions": promotions})
    return {"retrains": len(rows), "promotions": promotions, "rows": [r.as_dict() for r in rows]}
