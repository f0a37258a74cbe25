"""The ``din-ablation`` flow: a grid of models x regularisers x seeds, one parent MLflow run.

The default grid is the DIN paper's comparison: LR, BaseModel, Wide&Deep,
PNN, DeepFM, DIN and DIN+Dice without regularisation, plus DIN with each
regulariser (dropout, filter, DiFacto, MBA). Given ``models``, the grid is
those models alone, with regularised cells only when ``regularizers`` is
given too. ``cross=True`` takes the full product of the given models and
regularisers instead. ``tuned=True`` trains each cell from its model's tuned
config (``din tune``'s file, :func:`din_model.config.tuned.find_tuned_config`);
``overrides`` still layer on top.

The data steps run once for the whole grid (``data_seed``); the seeds vary
the training. Every cell is a child run of the parent, created with an
explicit ``parent_run_id``: cells run in Prefect worker threads or Dask
worker processes, where MLflow's active run would not carry the parent. The
parent logs the comparison table (CSV and markdown: AUC, GAUC, LogLoss,
RelaImpr against BaseModel, mean and spread over seeds, and the paired GAUC
difference of each row with a bootstrap interval over test users, see
:mod:`tasks.significance`), a bar chart, and the table as metrics.

Cells run on :func:`flows.task_runners.make_task_runner`: one at a time in a
worker thread by default (``workers=1``), or on Dask worker processes
(``workers`` > 1 on a local cluster, or ``dask_address``). Processes, because
the trainer seeds the process-wide torch generator: cells sharing a process
would disturb each other's randomness, while a cell alone in its process gives
the same metrics as when it runs alone. What a cell needs travels with it: the
prepared data's location (``DataOutcome``, a plain dataclass), the work folder
and the MLflow tracking URI, as task arguments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner

from din_model.config.tuned import find_tuned_config
from din_model.errors import ConfigError
from din_model.pipeline.layout import RunLayout
from din_model.registry import ablation_grid, dataset_names
from flows.runtime import install_run_logging
from flows.steps import DataOutcome, run_data_steps, run_training_steps
from flows.task_runners import make_task_runner
from flows.train_flow import flow_run_id
from tasks.allowed_paths import guard_deployment_paths
from tasks.cell_runs import end_orphaned_cells
from tasks.comparison import CellResult
from tasks.config import check_choice, resolve_run_config
from tasks.data import DEFAULT_SYNTHETIC_SCALE, resolve_source
from tasks.git_info import git_info
from tasks.paths import work_root
from tasks.run_lifecycle import failure_reason, tracked_run
from tasks.run_logging import log_comparison, log_inputs, tag_run
from tasks.run_names import run_name, source_label
from tasks.run_report import publish_run_report
from tasks.significance import DEFAULT_BOOTSTRAP_SEED, DEFAULT_RESAMPLES, paired_significance
from tasks.store import TRACKING_URI_ENV, sqlite_path, tracking_uri

# The paper's grid, as the model registry files declare it (their `ablation:` key).
PAPER_MODELS = ablation_grid().models
PAPER_REGULARIZERS = ablation_grid().regularizers
REGULARIZED_MODEL = ablation_grid().regularized_model
DEFAULT_SEEDS = (2024,)


def grid_cells(
    models: list[str], regularizers: list[str], cross: bool, regularized_model: str
) -> list[tuple[str, str]]:
    """(model, regulariser) pairs in table order, without duplicates."""
    if cross:
        cells = [(m, r) for m in models for r in regularizers]
    else:
        cells = [(m, "none") for m in models]
        cells += [(regularized_model, r) for r in regularizers if r != "none"]
    return list(dict.fromkeys(cells))


def default_regularizers(models: list[str] | None, regularizers: list[str] | None) -> list[str]:
    """The paper's regularisers for the paper's grid; none when the models were chosen."""
    if regularizers is not None:
        return list(regularizers)
    return list(PAPER_REGULARIZERS) if models is None else ["none"]


def ablation_run_name(
    cells: list[tuple[str, str]], seeds: list[int], tuned: bool, paper: bool
) -> str:
    """``ablation-base,din,din+mba-seeds1,2[-tuned]``; ``paper`` for the default grid."""
    grid = "paper" if paper else ",".join(m if r == "none" else f"{m}+{r}" for m, r in cells)
    name = f"ablation-{grid}-seeds{','.join(str(s) for s in seeds)}"
    return f"{name}-tuned" if tuned else name


def cell_config_files(
    cells: list[tuple[str, str]], dataset: str, work: Path, tuned: bool, config_file: str | None
) -> dict[str, str | None]:
    """The config file of each model: its tuned file with ``tuned``, else ``config_file``.

    A file path is made absolute (a preset name stays a name): Dask workers may run
    in another folder than the flow.
    """
    models = list(dict.fromkeys(m for m, _ in cells))
    if not tuned:
        if config_file and Path(config_file).is_file():
            # absolute: a worker process of a remote cluster may start in another folder
            config_file = str(Path(config_file).resolve())
        return {m: config_file for m in models}
    if config_file:
        raise ConfigError(
            "config_file: give a config file or tuned=True (--config or --tuned), not both; "
            "with tuned each model uses its own tuned file"
        )
    files = {}
    for model in models:
        try:
            files[model] = str(find_tuned_config(work, dataset, model))
        except FileNotFoundError as exc:
            raise ConfigError(str(exc)) from None
    return files


def absolute_tracking_uri() -> str:
    """The store in effect, a relative sqlite path made absolute (workers may start elsewhere)."""
    uri = tracking_uri()
    db = sqlite_path(uri)
    return uri if db is None else f"sqlite:///{db.resolve()}"


def use_tracking_uri(uri: str) -> None:
    """Point this process (a Dask worker) at the parent's store before any tracking call."""
    if os.environ.get(TRACKING_URI_ENV) != uri:
        os.environ[TRACKING_URI_ENV] = uri


@task(name="ablation-cell", cache_policy=NO_CACHE, persist_result=False)
def ablation_cell(
    parent_run_id: str,
    dataset: str,
    data: DataOutcome,
    model: str,
    regularizer: str,
    seed: int,
    overrides: list[str],
    config_file: str | None,
    base_tags: dict[str, Any],
    work: str,
    tracking: str | None = None,
) -> CellResult:
    """One child run: resolve config, train, evaluate, log (no registration).

    Runs in a worker thread of the flow's process or in a Dask worker process;
    ``tracking`` is the parent's MLflow URI, which a worker process may not have.
    """
    if tracking:
        use_tracking_uri(tracking)
    config = resolve_run_config.fn(model, dataset, regularizer, seed, overrides, config_file)
    tags = {**base_tags, "model": model, "regularizer": regularizer, "seed": seed, **data.tags()}
    if config_file:
        tags["config_file"] = config_file
    name = run_name(dataset, base_tags["source_label"], model, regularizer, seed)
    with tracked_run(dataset, name, tags, parent_run_id) as child:
        params = {
            "pipeline.dataset": dataset,
            "pipeline.model": model,
            "pipeline.regularizer": regularizer,
            "pipeline.seed": seed,
        }
        log_inputs(child, config, params, data.source)
        run_dir = work_root(work) / "runs" / dataset / child
        outcome = run_training_steps(
            child, dataset, data, model, regularizer, config, run_dir, seed, log_model=False
        )
    test = outcome["test"]
    return CellResult(
        model=model,
        regularizer=regularizer,
        seed=seed,
        auc=float(test["auc"]),
        gauc=float(test["gauc"]),
        logloss=float(test["logloss"]),
        run_id=child,
        predictions=str(RunLayout(run_dir).predictions),
    )


def run_cells(
    runner: TaskRunner,
    jobs: list[tuple[str, str, int]],
    shared: dict[str, Any],
    config_files: dict[str, str | None],
    sequential: bool,
) -> tuple[list[CellResult], list[str]]:
    """Submit every (model, regulariser, seed) cell; the results, and a line per failed cell."""
    futures = []
    for model, regularizer, seed in jobs:
        parameters = {
            **shared,
            "model": model,
            "regularizer": regularizer,
            "seed": seed,
            "config_file": config_files[model],
        }
        future = runner.submit(ablation_cell, parameters)
        futures.append(((model, regularizer, seed), future))
        if sequential:
            future.wait()  # one at a time: nothing queued when a signal comes
    results: list[CellResult] = []
    failures: list[str] = []
    for (model, regularizer, seed), future in futures:
        future.wait()
        state = future.state
        if state.is_completed():
            results.append(future.result())
        else:
            failures.append(f"{model}/{regularizer}/seed {seed}: {state.message}")
    return results, failures


@flow(name="din-ablation", flow_run_name="{dataset}-ablation")
def din_ablation(
    dataset: str = "amazon",
    source: str = "auto",
    models: list[str] | None = None,
    regularizers: list[str] | None = None,
    seeds: list[int] | None = None,
    cross: bool = False,
    regularized_model: str = REGULARIZED_MODEL,
    overrides: list[str] | None = None,
    config_file: str | None = None,
    data_seed: int = 2024,
    max_len: int | None = None,
    synthetic_scale: float = DEFAULT_SYNTHETIC_SCALE,
    synthetic_seed: int = 0,
    work_dir: str | None = None,
    workers: int = 1,
    dask_address: str | None = None,
    tuned: bool = False,
    bootstrap_resamples: int = DEFAULT_RESAMPLES,
    bootstrap_seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """Run the grid; return the comparison table (rows as dicts) and the run ids.

    ``models`` alone means those models without regularised cells; ``regularizers``
    adds ``regularized_model`` with each (or every model with each, ``cross``).
    ``workers``/``dask_address`` choose where cells run (see the module docstring).
    As a deployment run, its path parameters must lie under the configured roots.
    """
    install_run_logging()
    guard_deployment_paths(source, work_dir, config_file)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    if workers < 1:
        raise ConfigError(f"workers: expected a positive number of cells at a time, got {workers}")
    paper = models is None and regularizers is None and not cross
    regularizers = default_regularizers(models, regularizers)
    models = list(models if models is not None else PAPER_MODELS)
    seeds = list(seeds if seeds is not None else DEFAULT_SEEDS)
    overrides = list(overrides or [])
    cells = grid_cells(models, regularizers, cross, regularized_model)
    if not cells:
        raise ConfigError("the grid is empty: give --models, or --regs with --cross")
    work = work_root(work_dir)
    config_files = cell_config_files(cells, dataset, work, tuned, config_file)
    for model, regularizer in cells:  # fail before any training on a typo
        resolve_run_config.fn(model, dataset, regularizer, seeds[0], overrides, config_files[model])
    spec = resolve_source(dataset, source, synthetic_scale, synthetic_seed)
    base_tags = {
        "dataset": dataset,
        "source": spec.path,
        "source_fingerprint": spec.fingerprint,
        "source_label": source_label(spec),
        "prefect_flow_run_id": flow_run_id(),
        "data_seed": data_seed,
        **git_info().as_tags(),
    }
    parent_tags = {
        **base_tags,
        "ablation": "true",
        "grid": ", ".join(f"{m}/{r}" for m, r in cells),
        "seeds": ", ".join(str(s) for s in seeds),
        "tuned": str(tuned).lower(),
        "workers": dask_address or str(workers),
        "data_source": "synthetic" if spec.synthetic else "real",
    }
    parent_name = ablation_run_name(cells, seeds, tuned, paper)
    tracking = absolute_tracking_uri()
    sequential = dask_address is None and workers <= 1
    # The runner is entered first and left last: on SIGTERM the parent's tracked_run ends
    # this process's open runs (a cell in a worker thread stops at its next epoch) before
    # the runner waits for its workers; Dask starts its cluster at the first submit.
    parent = ""
    try:
        with (
            make_task_runner(workers, dask_address) as runner,
            tracked_run(dataset, parent_name, parent_tags) as parent,
        ):
            logger.info(
                "ablation parent run %s: %d cells x %d seeds", parent, len(cells), len(seeds)
            )
            data = run_data_steps(spec, work, seed=data_seed, max_len=max_len)
            tag_run(parent, data.tags())
            shared = {
                "parent_run_id": parent,
                "dataset": dataset,
                "data": data,
                "overrides": overrides,
                "base_tags": base_tags,
                "work": str(work),
                "tracking": tracking,
            }
            jobs = [(m, r, s) for s in seeds for m, r in cells]
            results, failures = run_cells(runner, jobs, shared, config_files, sequential)
            comparison: dict[str, Any] = {}
            if results:
                significance = paired_significance(results, bootstrap_resamples, bootstrap_seed)
                title = f"din-ablation on {dataset} ({parent_name})"
                comparison = log_comparison(parent, dataset, results, significance, title)
                publish_run_report(
                    parent, title,
                    [(row["cell"], f"test GAUC {row['gauc_mean']:.4f} ({row['seeds']} seeds)")
                     for row in comparison["rows"]],
                    key=f"din-ablation-{dataset}",
                )  # fmt: skip
            if failures:
                raise RuntimeError(
                    f"{len(failures)} ablation cell(s) failed: " + "; ".join(failures)
                )
    except BaseException as exc:
        if parent and not sequential:  # cells in stopped worker processes: end them too
            end_orphaned_cells(parent, failure_reason(exc))
        raise
    return {
        "parent_run_id": parent,
        "parent_run_name": parent_name,
        "child_run_ids": [r.run_id for r in results],
        "table": comparison.get("rows", []),
        "markdown": comparison.get("markdown", "no cell completed\n"),
        "prepared_dir": data.prepared,
    }
