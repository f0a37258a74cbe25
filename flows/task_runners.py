"""The task runner that fans tuning trials and ablation cells out.

Cells and trials run on Dask through prefect-dask: a LocalCluster of worker
*processes* by default, or an existing cluster given by its address. Worker
processes, not threads, because the trainer seeds the process-wide torch
generator: two cells in one process would disturb each other's randomness,
while in separate processes each cell gives the same metrics it gives alone.
Each worker gets an equal share of the machine's cores as torch threads
(``OMP_NUM_THREADS``, which torch reads when it is imported in the worker).
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner


def torch_threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def make_task_runner(workers: int = 1, dask_address: str | None = None) -> TaskRunner:
    """One in-process worker thread for ``workers`` 1 and no address; Dask otherwise."""
    if dask_address is None and workers <= 1:
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    threads = torch_threads_per_worker(workers)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "env": {"OMP_NUM_THREADS": str(threads)},  # torch reads it at import
        }
    )
