"""The registered model behind a real ``mlflow models serve``: raw JSON in, the same scores out.

A finished ``din-train`` run on the real Amazon Magazine_Subscriptions reviews registers
``din-amazon``; ``mlflow models serve -m models:/din-amazon@champion --env-manager
local`` is started as its own process (its own interpreter, the model loaded from the
registry as any deployment would load it), raw test rows are POSTed to
``/invocations`` in both pandas orientations (``dataframe_records``,
``dataframe_split``), with history lists, and every returned score must equal the
in-process ``mlflow.pyfunc.load_model(...).predict`` of the same rows. A request
without the history column is refused with the column named. The server is stopped
in the fixture's teardown (its whole process group), and the teardown checks that no
process of it is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from _pipeline_support import free_port

pytestmark = pytest.mark.slow

MODEL_URI = "models:/din-amazon@champion"
STARTUP_TIMEOUT_S = 90  # the server imports mlflow, torch and the model: ~10-20 s here
STOP_TIMEOUT_S = 15
#: Server vs in-process scores. Both run the same code (the pyfunc of
#: tasks/pyfunc_definition.py over RawScorer) on the same rows in one batch, and the
#: scores cross JSON as float64 written by Python's shortest round-trip repr, which reads
#: back to the identical double; so the difference is 0 unless the two processes' float32
#: kernels differ (a different torch thread count can split a reduction differently, a
#: few float32 ulps ~ 6e-8 relative). We measure 0 here; 1e-6 is the bound the other
#: parity tests use for "same float32 network, batched differently" (test_raw_serving),
#: far below a wrong id, a lost history or a column read as another (1e-3 and more).
PARITY = 1e-6


@pytest.fixture(scope="module")
def raw_rows(magazine_raw_test: pl.DataFrame) -> pl.DataFrame:
    """The shared Magazine run's raw test rows (conftest), without the label."""
    return magazine_raw_test.drop("label")


def _get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status


def _post(url: str, payload: dict[str, Any], timeout: float = 60.0) -> tuple[int, str]:
    """(status, body) of a JSON POST; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from ``/proc``."""
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux: ask the kernel instead
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for stat in proc.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'
        state, _ppid, group = text[text.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _stop(process: subprocess.Popen, pgid: int) -> None:
    """SIGTERM to the server's process group, wait; SIGKILL to the group on timeout."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_members(pgid) and time.monotonic() < deadline:  # workers may exit later
        time.sleep(0.1)
    if _group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def server(magazine_run: dict[str, Any], tmp_path_factory) -> Iterator[str]:
    """Base URL of ``mlflow models serve`` of the champion; stopped (all of it) afterwards."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("model-server") / "server.log"
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    command = [
        str(mlflow_cli), "models", "serve", "-m", MODEL_URI, "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    # MLFLOW_TRACKING_URI: the module's store, where the model is; PATH: the server runs
    # `uvicorn` by name, which lives next to this interpreter (the venv need not be active)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")])}
    assert env.get("MLFLOW_TRACKING_URI", "").startswith("sqlite:///")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    pgid = process.pid  # start_new_session: the server leads a process group of its own
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the model server exited ({process.returncode}):\n{_tail(log_path)}")
            try:
                if _get(f"{base}/ping") == 200:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no /ping answer in {STARTUP_TIMEOUT_S} s:\n{_tail(log_path)}")
            time.sleep(0.25)
        yield base
    finally:
        _stop(process, pgid)
    assert process.returncode is not None
    assert not _group_members(pgid), "a process of the model server outlived its teardown"


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.is_file() else "(no log)"


def _in_process(rows: pl.DataFrame) -> np.ndarray:
    import mlflow

    return np.asarray(mlflow.pyfunc.load_model(MODEL_URI).predict(rows.to_pandas()))


def _predictions(body: str) -> np.ndarray:
    payload = json.loads(body)
    return np.asarray(payload["predictions"], dtype=np.float64)


def test_raw_records_score_as_in_process(server: str, raw_rows: pl.DataFrame) -> None:
    rows = raw_rows
    assert rows.height == 696 and rows["history_item_id"].list.len().max() > 1
    records = rows.to_dicts()  # history_item_id: a JSON list of ASINs per row
    assert isinstance(records[0]["history_item_id"], list)
    status, body = _post(f"{server}/invocations", {"dataframe_records": records})
    assert status == 200, body[:2000]
    served = _predictions(body)
    expected = _in_process(rows)
    assert served.shape == expected.shape == (rows.height,)
    assert np.all((served > 0) & (served < 1))
    # See PARITY; the measured difference is printed with -s.
    print(f"records: max |served - in process| = {np.abs(served - expected).max():.3g}")
    np.testing.assert_allclose(served, expected, rtol=0, atol=PARITY)


def test_raw_split_frames_score_as_in_process(server: str, raw_rows: pl.DataFrame) -> None:
    rows = raw_rows.head(120)
    split = {"columns": rows.columns, "data": [list(row) for row in rows.iter_rows()]}
    status, body = _post(f"{server}/invocations", {"dataframe_split": split})
    assert status == 200, body[:2000]
    served = _predictions(body)
    expected = _in_process(rows)
    print(f"split: max |served - in process| = {np.abs(served - expected).max():.3g}")
    np.testing.assert_allclose(served, expected, rtol=0, atol=PARITY)
    # one record alone scores as it does in the batch: no row leaks into another
    status, body = _post(f"{server}/invocations", {"dataframe_records": rows.head(1).to_dicts()})
    assert status == 200, body[:2000]
    np.testing.assert_allclose(_predictions(body), served[:1], rtol=0, atol=PARITY)


def test_a_request_without_the_history_is_refused_naming_it(
    server: str, raw_rows: pl.DataFrame
) -> None:
    records = raw_rows.drop("history_item_id").head(3).to_dicts()
    status, body = _post(f"{server}/invocations", {"dataframe_records": records})
    print(f"refused: {status} {body[:300]}")
    assert 400 <= status < 600, body[:2000]
    assert "history_item_id" in body, body[:2000]
    # the server is still up and serving after the refusal
    assert _get(f"{server}/ping") == 200
