"""Cells left RUNNING by worker processes that a terminated ablation took down with it.

A cell on a Dask worker runs in another process, so when the ablation
command is terminated (SIGTERM, SIGINT) or fails, the parent's
:func:`tasks.run_lifecycle.tracked_run` can end only the runs of its own
process; shutting the local cluster down then kills the workers in the middle
of their cells. Right after that, :func:`end_orphaned_cells` ends those cells
FAILED with the parent's reason, as a cell in a worker thread would have
ended, instead of leaving them for the next command's sweep
(:mod:`tasks.run_reaper`, which would mark them KILLED).

Only runs whose process is gone are touched: a cell of a live process (a
remote cluster keeps its workers) is left to finish or to be reaped by its host.
"""

from __future__ import annotations

import logging

from tasks import tracking
from tasks.process_identity import HOST_TAG, PID_START_TAG, PID_TAG, host_name, is_alive
from tasks.run_lifecycle import ERROR_TAG

logger = logging.getLogger(__name__)


def _gone(tags: dict[str, str]) -> bool:
    if tags.get(HOST_TAG) != host_name():
        return False
    try:
        pid = int(tags.get(PID_TAG, ""))
    except ValueError:
        return False
    text = tags.get(PID_START_TAG) or ""
    try:
        started = float(text) if text else None
    except ValueError:
        started = None
    return not is_alive(pid, started)


def end_orphaned_cells(parent_run_id: str, reason: str) -> list[str]:
    """End FAILED, with ``reason``, the RUNNING children of ``parent_run_id`` whose process died.

    Never raises: the failure that ended the parent matters more.
    """
    ended = []
    try:
        client = tracking.client()
        parent = client.get_run(parent_run_id)
        query = f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.status = 'RUNNING'"
        for run in client.search_runs([parent.info.experiment_id], query):
            if not _gone(run.data.tags):
                continue
            tracking.set_tags(run.info.run_id, {tracking.FAILURE_TAG: reason, ERROR_TAG: reason})
            tracking.finish_run(run.info.run_id, failed=True)
            ended.append(run.info.run_id)
    except Exception:
        logger.exception("could not end the cells of ablation run %s", parent_run_id)
    if ended:
        logger.warning("ended %d cell run(s) of stopped workers: %s", len(ended), ", ".join(ended))
    return ended
