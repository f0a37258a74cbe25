"""Runs left RUNNING by processes that died without closing them are marked KILLED.

A ``din`` process that receives SIGKILL cannot record anything, so its run
would stay RUNNING in MLflow forever. The next process that opens the store
for tracking (:func:`tasks.store.configure_mlflow`) looks at the RUNNING runs
opened on this host (tag ``din.host``) and ends those whose process is gone,
or whose pid now belongs to another process (``din.pid_start`` differs), as
KILLED with a ``din.failure`` tag saying so. Runs of other hosts are left
alone: their processes cannot be checked from here.
"""

from __future__ import annotations

import logging
import math
import os
import time

from tasks.process_identity import HOST_TAG, PID_START_TAG, PID_TAG, host_name, is_alive
from tasks.tracking import FAILURE_TAG

logger = logging.getLogger(__name__)

PAGE = 1000


def _recorded_start(text: str | None) -> float | None:
    try:
        value = float(text) if text else math.nan
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _running_runs_of_this_host(client, host: str) -> list:
    experiment_ids, token = [], None
    while True:
        page = client.search_experiments(max_results=PAGE, page_token=token)
        experiment_ids += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    if not experiment_ids:
        return []
    query = f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'"
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=PAGE, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def dead_runs(client) -> list[tuple[str, int]]:
    """(run id, pid) of the RUNNING runs of this host whose process no longer exists."""
    host = host_name()
    if "'" in host or "\\" in host:
        return []  # not expressible in a search filter; such hosts are not swept
    found = []
    for run in _running_runs_of_this_host(client, host):
        tags = run.data.tags
        try:
            pid = int(tags.get(PID_TAG, ""))
        except ValueError:
            continue
        if not is_alive(pid, _recorded_start(tags.get(PID_START_TAG))):
            found.append((run.info.run_id, pid))
    return found


def mark_dead_runs_killed(uri: str) -> list[str]:
    """Mark the runs of dead processes of this host KILLED; returns their ids.

    A store error here is logged, not raised: sweeping old runs must not stop
    the run that is about to start.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    marked = []
    try:
        for run_id, pid in dead_runs(client):
            reason = (
                f"killed: process {pid} on {host_name()} ended without closing this run "
                f"(SIGKILL, out of memory or a crash); marked KILLED by process {os.getpid()} "
                f"at {time.strftime('%Y-%m-%d %H:%M:%S %z')}"
            )
            client.set_tag(run_id, FAILURE_TAG, reason)
            client.set_terminated(run_id, "KILLED")
            marked.append(run_id)
    except (MlflowException, OSError) as exc:
        logger.warning("could not check for runs of dead processes in %s: %s", uri, exc)
    if marked:
        logger.warning(
            "marked %d run(s) of dead processes KILLED: %s", len(marked), ", ".join(marked)
        )
    return marked
