"""Scheduled retraining end to end: a real Prefect server, a real MLflow store, real data.

- A deployment with a short interval schedule fires over two arrivals of an arriving
  Magazine_Subscriptions folder: the first retrain makes the first champion, runs with
  nothing new end early and register nothing, and the retrain after the next arrival
  is judged head to head with the champion on that arrival, both scores recorded.
- A short replay (an initial history and two arrivals) runs din-train once per
  arrival and logs the timeline and its plot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _pipeline_support import TINY_CONFIG, free_port, stop_process

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BIN = Path(sys.executable).parent
# Magazine_Subscriptions has ~2,400 reviews from 2001 to 2018: everything before 2017
# is the initial history, then one arrival per month (~25 reviews each).
START = "2017-01-01"


def _versions(name: str) -> list:
    from mlflow import MlflowClient

    return MlflowClient().search_model_versions(f"name = '{name}'")


def _finished_versions(name: str) -> int:
    """Versions whose training run has ended FINISHED (registered, judged, tagged)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    return sum(client.get_run(v.run_id).info.status == "FINISHED" for v in _versions(name))


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


@pytest.mark.slow
def test_an_interval_schedule_retrains_over_two_arrivals(
    mlflow_store: str, amazon_magazine: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from din_model.data.sources.timeline_cut import cut_timeline, publish_next_arrival
    from flows.runtime import server_healthy, wait_until

    staging, landing = tmp_path / "staging", tmp_path / "data" / "landing"
    cut_timeline("amazon", amazon_magazine, staging, every="1m", start=START, limit=3)
    for _ in range(2):  # the initial history and the first month: one retrain's worth
        assert publish_next_arrival(staging, landing) is not None
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # the scheduler service creates the interval's runs; its default loop is 60 s
        PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
        PREFECT_RUNNER_POLL_FREQUENCY="2",
        DIN_DATA_ROOTS=str(tmp_path / "data") + os.pathsep + str(TINY_CONFIG.parent),
        DIN_WORK_DIR=str(tmp_path / "work"),
        PYTHONPATH=str(REPO),
    )
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    env.pop("PREFECT_API_URL", None)
    server_log, serve_log = tmp_path / "server.log", tmp_path / "serve.log"
    with server_log.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    serve = None
    name = "din-amazon"
    try:
        assert wait_until(lambda: server_healthy(url), 120), _tail(server_log)
        with serve_log.open("wb") as log:
            serve = subprocess.Popen(
                [sys.executable, str(HERE / "_interval_serve.py"), "10", str(landing),
                 str(TINY_CONFIG)],
                cwd=REPO, env={**env, "PREFECT_API_URL": url}, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

        def wait_for(predicate, seconds: float) -> bool:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if predicate():
                    return True
                assert serve.poll() is None, _tail(serve_log)
                time.sleep(2)
            return False

        # 1. The first scheduled retrain registers the first champion.
        assert wait_for(lambda: _finished_versions(name) == 1, 300), _tail(serve_log)
        # 2. A later firing finds nothing new: it ends early and registers nothing.
        assert wait_for(lambda: "no new data since run" in serve_log.read_text(), 120), _tail(
            serve_log
        )
        assert len(_versions(name)) == 1
        # 3. The next month lands; the retrain after it is judged head to head on it.
        arrival = publish_next_arrival(staging, landing)
        assert arrival is not None
        # the version exists before its judging ends: wait for its run to finish
        assert wait_for(lambda: _finished_versions(name) == 2, 300), _tail(serve_log)
    finally:
        if serve is not None:
            stop_process(serve)
        stop_process(server)

    client = MlflowClient()
    second = client.get_model_version(name, "2")
    tags = second.tags
    assert tags["h2h_slice"] == f"arrival {arrival.label}"
    for key in ("challenger_gauc", "champion_gauc"):
        assert 0.0 <= float(tags[key]) <= 1.0, key
    assert float(tags["gauc_diff_low"]) <= float(tags["gauc_diff"]) <= float(tags["gauc_diff_high"])
    assert tags["champion_version"] == "1"
    run = client.get_run(second.run_id)
    assert run.data.tags["trigger"] == "schedule"
    assert run.data.tags["champion_decision"] == tags["champion_decision"]
    # the tag is the metric written with 10 significant digits: they differ by at most
    # 5e-10 relative, inside approx's default 1e-6 on any CPU (no arithmetic in between)
    assert run.data.metrics["challenger_gauc"] == pytest.approx(float(tags["challenger_gauc"]))
    assert run.data.tags["prefect_flow_run_url"].startswith("http")
    # the skipped firings left no MLflow run behind: one run per registered version
    assert len(client.search_runs([run.info.experiment_id])) == 2


@pytest.mark.slow
def test_a_short_replay_logs_its_timeline(
    prefect_server, mlflow_store: str, amazon_magazine: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from flows.replay_flow import din_replay
    from flows.train_flow import din_train

    plot = tmp_path / "timeline.png"
    result = din_replay(
        dataset="amazon", source=str(amazon_magazine), every="1m", start=START, limit=2,
        model="din", config_file=str(TINY_CONFIG), seed=5, work_dir=str(tmp_path / "work"),
        plot_out=str(plot),
    )  # fmt: skip
    # three arrivals (the history and two months): a retrain after the 2nd and the 3rd
    assert result["retrains"] == 2
    first, second = result["rows"]
    assert first["kind"] == "first" and first["promoted"]
    assert second["champion_version"] == "1"
    assert second["gauc_diff_low"] <= second["gauc_diff"] <= second["gauc_diff_high"]
    # a PNG was written, not an empty file: any two-axes figure at 110 dpi is well over
    # 10 KB (the bare axes alone are ~17 KB), so this checks the file; what it plots is
    # the timeline rows asserted above
    assert plot.stat().st_size > 10_000
    client = MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(result["run_id"])}
    assert {"timeline.csv", "timeline.json", "plots"} <= artifacts
    assert [a.path for a in client.list_artifacts(result["run_id"], "plots")] == [
        "plots/timeline.png"
    ]
    # the replay's versions never touch din-amazon
    assert not _versions("din-amazon")
    assert len(_versions(result["registered_model"])) == 2
    # nothing new in the landing folder: a retrain ends early and registers nothing
    again = din_train(
        dataset="amazon", source=result["arrivals_folder"], model="din",
        config_file=str(TINY_CONFIG), seed=5, work_dir=str(tmp_path / "work"),
        registered_name=result["registered_model"],
    )  # fmt: skip
    assert again["skipped"] and "no new data since run" in again["reason"]
    assert len(_versions(result["registered_model"])) == 2
