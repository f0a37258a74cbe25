"""The din-tune flow on the real Magazine_Subscriptions data, tiny config, one shared store.

The tests share one MLflow store, Optuna database and work folder (the data
steps run once), and build on each other in file order: the 4-trial study on
two Dask workers, then its resumption, a grid from a user file, a pruned trial.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from .conftest import TINY_CONFIG

pytestmark = pytest.mark.slow

# BaseModel: the machinery under test is the same for every model, and it trains fastest
# among those with an MLP (no activation unit, no attention plots after the final fit).
MODEL = "base"
SEED = 5
# One torch thread: two threads on two busy cores spin-wait and run several times slower.
ONE_THREAD = "train.num_threads=1"


def tune(source: Path, work: Path, **kwargs):
    from flows.tune_flow import din_tune

    settings = {
        "dataset": "amazon",
        "source": str(source),
        "model": MODEL,
        "config_file": str(TINY_CONFIG),
        "seed": SEED,
        "work_dir": str(work),
        **kwargs,
    }
    settings["overrides"] = [ONE_THREAD, *settings.get("overrides", [])]
    return din_tune(**settings)


def runs_of(parent_run_id: str):
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("din-amazon")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if r.info.run_id == parent_run_id)
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_run_id]
    return client, parent, children


@pytest.fixture(scope="module")
def four_trials(
    prefect_api, tune_store: Path, tune_work: Path, amazon_magazine: Path, tmp_path_factory
):
    out = tmp_path_factory.mktemp("tuned") / "best.yaml"
    result = tune(amazon_magazine, tune_work, trials=4, workers=2, out=str(out))
    return result, out


def test_four_trials_on_two_dask_workers(four_trials, tune_store: Path) -> None:
    result, out = four_trials
    assert result["storage"] == f"sqlite:///{tune_store / 'optuna.db'}"  # beside mlflow.db
    study = optuna.load_study(study_name=result["study_name"], storage=result["storage"])
    trials = study.get_trials()
    assert len(trials) == 4 and all(
        t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials
    )
    # several worker processes trained them: each trial records the run that logged it
    client, parent, children = runs_of(result["parent_run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["tuning"] == "true"
    assert len(children) == 4 and all(c.info.status == "FINISHED" for c in children)
    assert {c.info.run_id for c in children} == {t.user_attrs["mlflow_run_id"] for t in trials}
    for child in children:
        number = int(child.data.tags["optuna.trial_number"])
        trial = study.trials[number]
        assert {
            k[len("tune.") :]: v for k, v in child.data.params.items() if k.startswith("tune.")
        } == {k: str(v) for k, v in trial.params.items()}
        assert child.data.params["train.seed"] == str(SEED)  # the full resolved config too
        if trial.state == TrialState.COMPLETE:
            assert child.data.metrics["best_valid_gauc"] == trial.value
        history = client.get_metric_history(child.info.run_id, "valid_gauc")
        assert [m.step for m in history] == [1]  # tiny config: one epoch, reported per epoch
        assert "test_gauc" not in child.data.metrics  # trials never score test

    best = study.best_trial
    assert {
        k[len("best.") :]: v for k, v in parent.data.params.items() if k.startswith("best.")
    } == {k: str(v) for k, v in best.params.items()}
    assert parent.data.metrics["best_trial"] == best.number
    assert parent.data.metrics["best_trial_valid_gauc"] == best.value
    assert parent.data.tags["optuna.best_trial_run_id"] == best.user_attrs["mlflow_run_id"]
    for metric in ("test_auc", "test_gauc", "test_logloss"):
        assert 0.0 < parent.data.metrics[metric] < 1.0
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/optimization_history.png", "plots/param_importances.png"} <= plots
    assert "tuned_config.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}

    from din_model.config.tuned import tuned_config_path

    tuned = tuned_config_path(Path(result["tuned_config"]).parents[2], "amazon", MODEL)
    assert Path(result["tuned_config"]) == tuned and tuned.read_text() == out.read_text()
    written = yaml.safe_load(out.read_text())
    for name, value in best.params.items():
        param = next(p for p in study_space(result).params if p.name == name)
        section, key = param.key.split(".")
        assert written[section][key] == param.value(value)


def study_space(result: dict):
    from din_model.config import resolve_config
    from din_model.tuning.space import load_space

    base = resolve_config(
        MODEL, "amazon", config_file=TINY_CONFIG, overrides=[f"train.seed={SEED}"]
    )
    return load_space(result["space"]).for_run(MODEL, "none", base)


def test_the_tuned_file_trains_with_din_train_and_din_run(four_trials, tmp_path: Path) -> None:
    from din_model.config import config_hash, resolve_config
    from flows.cli import main
    from tasks.config import resolve_run_config

    result, out = four_trials
    trained = tmp_path / "trained"
    argv = ["train", "--data", result["prepared_dir"], "--model", MODEL, "--config", str(out)]
    assert main([*argv, "--out", str(trained)]) == 0
    assert (trained / "metrics.json").is_file()
    best = resolve_config(MODEL, "amazon", config_file=out)
    assert best["train"]["num_threads"] == 1  # the study's --set is part of the tuned config
    saved = yaml.safe_load((trained / "config.yaml").read_text())
    assert config_hash(saved) == config_hash(best)
    # din run resolves --config the same way (its seed and --reg are the flow's own)
    assert resolve_run_config.fn(MODEL, "amazon", "none", SEED, [], str(out)) == best


def test_an_interrupted_study_resumes_and_counts_its_trials(
    four_trials, tune_work: Path, amazon_magazine: Path
) -> None:
    """A trial left RUNNING by a killed process is failed; --trials 5 then runs one more."""
    result, _ = four_trials
    study = optuna.load_study(study_name=result["study_name"], storage=result["storage"])
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    orphan = study.ask()
    orphan.set_user_attr("din.host", __import__("socket").gethostname())
    orphan.set_user_attr("din.pid", gone.stdout.strip())  # exited: the "killed" tuner

    again = tune(amazon_magazine, tune_work, trials=5, workers=1)
    assert again["study_name"] == result["study_name"] and again["trials_before"] == 4
    study = optuna.load_study(study_name=result["study_name"], storage=result["storage"])
    states = [t.state for t in study.get_trials()]
    assert (
        states.count(TrialState.FAIL) == 1 and study.trials[orphan.number].state == TrialState.FAIL
    )
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 5
    _, parent, children = runs_of(again["parent_run_id"])
    assert [c.data.tags["optuna.trial_number"] for c in children] == [str(len(states) - 1)]
    assert parent.data.params["tune.trials_before"] == "4"
    assert parent.data.metrics["trials_complete"] + parent.data.metrics["trials_pruned"] == 5


def test_a_grid_from_a_user_file_is_walked_once(
    four_trials, tune_work: Path, amazon_magazine: Path, tmp_path: Path
) -> None:
    space = tmp_path / "small-grid.yaml"
    space.write_text(
        "sampler: grid\n"
        "params:\n"
        "  learning_rate: {key: train.learning_rate, values: [0.01, 0.001]}\n"
        "  attention_hidden: {key: model.attention_hidden, values: [[16], [8]]}\n"
    )
    result = tune(amazon_magazine, tune_work, space=str(space), trials=10)
    assert result["sampler"] == "grid" and result["target_trials"] == 2  # capped at the grid
    assert result["left_out"] == {"attention_hidden": "base has no setting model.attention_hidden"}
    study = optuna.load_study(study_name=result["study_name"], storage=result["storage"])
    assert sorted(t.params["learning_rate"] for t in study.get_trials()) == [0.001, 0.01]
    _, _, children = runs_of(result["parent_run_id"])
    assert sorted(c.data.params["train.learning_rate"] for c in children) == ["0.001", "0.01"]


def test_a_pruned_trial_ends_finished_with_a_pruned_tag(
    four_trials, tune_work: Path, amazon_magazine: Path, tmp_path: Path
) -> None:
    """GAUC is at most 1, so a threshold of 1.01 prunes the trial after its first epoch."""
    from tasks.tuning_study import TuningFailed

    space = tmp_path / "prune.yaml"
    space.write_text(
        "sampler: grid\n"
        "pruner: {name: threshold, lower: 1.01, warmup_epochs: 0}\n"
        "params:\n"
        "  learning_rate: {key: train.learning_rate, values: [0.01]}\n"
    )
    with pytest.raises(TuningFailed, match="no trial completed \\(1 pruned, 0 failed\\)"):
        tune(amazon_magazine, tune_work, space=str(space), overrides=["train.epochs=2"])
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.get_experiment_by_name("din-amazon")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`tune.space` = 'prune' and tags.tuning = 'true'"
    )
    assert (
        parent.info.status == "FAILED" and "no trial completed" in parent.data.tags["din.failure"]
    )
    _, _, (child,) = runs_of(parent.info.run_id)
    assert child.info.status == "FINISHED"
    assert child.data.tags["pruned"] == "true" and child.data.tags["pruned_at_epoch"] == "1"
    assert child.data.tags["optuna.trial_state"] == "PRUNED"
    assert [m.step for m in client.get_metric_history(child.info.run_id, "valid_gauc")] == [1]
    study = optuna.load_study(
        study_name=parent.data.tags["optuna.study_name"], storage=parent.data.tags["optuna.storage"]
    )
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1]
