"""The ``din-ablation`` flow: a grid of models x regularisers x seeds, one parent MLflow run.

The default grid is the DIN paper's comparison: LR, BaseModel, Wide&Deep,
PNN, DeepFM, DIN and DIN+Dice without regularisation, plus DIN with each
regulariser (dropout, filter, DiFacto, MBA). ``cross=True`` takes the full
product of the given models and regularisers instead.

The data steps run once for the whole grid (``data_seed``); the seeds vary
the training. Every cell is a child run of the parent, created with an
explicit ``parent_run_id``: cells run in Prefect worker threads, where
MLflow's per-thread active run would not carry the parent. The parent logs
the comparison table (CSV and markdown: AUC, GAUC, LogLoss, RelaImpr against
BaseModel, mean and spread over seeds) and a bar chart.

Cells run one at a time by default (``parallel=1``): the trainer seeds the
process-wide torch generator, so concurrent cells would disturb each
other's randomness and lose run-to-run reproducibility.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.registry import ablation_grid, dataset_names
from flows.steps import DataOutcome, run_data_steps, run_training_steps
from flows.train_flow import flow_run_id, run_name
from tasks.allowed_paths import guard_deployment_paths
from tasks.comparison import CellResult
from tasks.config import check_choice, resolve_run_config
from tasks.data import DEFAULT_SYNTHETIC_SCALE, resolve_source
from tasks.git_info import git_info
from tasks.paths import work_root
from tasks.run_lifecycle import tracked_run
from tasks.run_logging import log_comparison, log_inputs, tag_run

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
) -> CellResult:
    """One child run: resolve config, train, evaluate, log (no registration)."""
    config = resolve_run_config.fn(model, dataset, regularizer, seed, overrides, config_file)
    tags = {**base_tags, "model": model, "regularizer": regularizer, "seed": seed, **data.tags()}
    with tracked_run(dataset, run_name(model, regularizer, seed), tags, parent_run_id) as child:
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
    )


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
    parallel: int = 1,
) -> dict[str, Any]:
    """Run the grid; return the comparison table (rows as dicts) and the run ids.

    As a deployment run, its path parameters must lie under the configured roots.
    """
    guard_deployment_paths(source, work_dir, config_file)
    logger = get_run_logger()
    check_choice("dataset", dataset, dataset_names())
    models = list(models if models is not None else PAPER_MODELS)
    regularizers = list(regularizers if regularizers is not None else PAPER_REGULARIZERS)
    seeds = list(seeds if seeds is not None else DEFAULT_SEEDS)
    overrides = list(overrides or [])
    cells = grid_cells(models, regularizers, cross, regularized_model)
    for model, regularizer in cells:  # fail before any training on a typo
        resolve_run_config.fn(model, dataset, regularizer, seeds[0], overrides, config_file)
    work = work_root(work_dir)
    spec = resolve_source(dataset, source, synthetic_scale, synthetic_seed)
    base_tags = {
        "dataset": dataset,
        "source": spec.path,
        "source_fingerprint": spec.fingerprint,
        "prefect_flow_run_id": flow_run_id(),
        "data_seed": data_seed,
        **git_info().as_tags(),
    }
    parent_tags = {
        **base_tags,
        "ablation": "true",
        "grid": ", ".join(f"{m}/{r}" for m, r in cells),
        "seeds": ", ".join(str(s) for s in seeds),
        "data_source": "synthetic" if spec.synthetic else "real",
    }
    results: list[CellResult] = []
    failures: list[str] = []
    parent_name = f"ablation-{time.strftime('%Y%m%d-%H%M%S')}"
    with tracked_run(dataset, parent_name, parent_tags) as parent:
        logger.info("ablation parent run %s: %d cells x %d seeds", parent, len(cells), len(seeds))
        data = run_data_steps(spec, work, seed=data_seed, max_len=max_len)
        tag_run(parent, data.tags())
        jobs = [(m, r, s) for s in seeds for m, r in cells]
        futures = []
        for model, regularizer, seed in jobs:
            future = ablation_cell.submit(
                parent,
                dataset,
                data,
                model,
                regularizer,
                seed,
                overrides,
                config_file,
                base_tags,
                str(work),
            )
            futures.append(((model, regularizer, seed), future))
            if parallel <= 1:
                future.wait()  # one at a time, still in a worker thread
        for (model, regularizer, seed), future in futures:
            future.wait()
            state = future.state
            if state.is_completed():
                results.append(future.result())
            else:
                failures.append(f"{model}/{regularizer}/seed {seed}: {state.message}")
        comparison = log_comparison(parent, dataset, results) if results else {}
        if failures:
            raise RuntimeError(f"{len(failures)} ablation cell(s) failed: " + "; ".join(failures))
    return {
        "parent_run_id": parent,
        "child_run_ids": [r.run_id for r in results],
        "table": comparison.get("rows", []),
        "markdown": comparison.get("markdown", "no cell completed\n"),
        "prepared_dir": data.prepared,
    }
