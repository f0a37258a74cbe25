"""Search space files, the study's identity and bookkeeping: no server, no training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from din_model.config import resolve_config
from din_model.errors import ConfigError
from din_model.tuning.objective import EpochReporter, suggest, trial_config
from din_model.tuning.space import load_space
from din_model.tuning.study import (
    AskAndTellGridSampler,
    fail_stale_trials,
    grid_points_left,
    make_pruner,
    make_sampler,
    study_name,
    target_trials,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def config(model: str, regularizer: str = "none") -> dict:
    return resolve_config(model, "amazon", overrides=[f"regularizer.name={regularizer}"])


def names(space) -> list[str]:
    return [p.name for p in space.params]


def test_the_recbole_grid_maps_to_our_keys_and_drops_pooling_for_din() -> None:
    space = load_space("recbole")
    assert space.is_grid
    base = space.for_run("base", "none", config("base"))
    assert names(base) == ["learning_rate", "dropout_prob", "mlp_hidden_size", "pooling_mode"]
    assert base.grid_size == 5 * 6 * 4 * 3
    assert {p.name: p.key for p in base.params} == {
        "learning_rate": "train.learning_rate",
        "dropout_prob": "model.dropout",
        "mlp_hidden_size": "model.mlp_hidden",
        "pooling_mode": "model.pooling_mode",
    }
    din = space.for_run("din", "none", config("din"))
    assert names(din) == ["learning_rate", "dropout_prob", "mlp_hidden_size"]
    assert din.grid_size == 5 * 6 * 4
    assert dict(din.dropped) == {"pooling_mode": "din has no setting model.pooling_mode"}
    # lists are stored as JSON text (Optuna's categorical values are scalars) and map back
    assert din.grid()["mlp_hidden_size"][0] == "[64, 64, 64]"
    stored = {"learning_rate": 0.005, "dropout_prob": 0.1, "mlp_hidden_size": "[64, 64, 64]"}
    assert din.layer(stored) == {
        "train": {"learning_rate": 0.005},
        "model": {"dropout": 0.1, "mlp_hidden": [64, 64, 64]},
    }


def test_the_default_space_fits_each_model_and_regulariser() -> None:
    space = load_space("default")
    assert not space.is_grid
    assert names(space.for_run("lr", "none", config("lr"))) == ["learning_rate", "batch_size"]
    din_mba = space.for_run("din", "mba", config("din", "mba"))
    assert "mba_weight" in names(din_mba) and "l2_weight" not in names(din_mba)
    assert "pooling_mode" not in names(din_mba) and "attention_hidden" in names(din_mba)
    assert dict(din_mba.dropped)["l2_weight"] == "regularizer.l2.weight applies only with --reg l2"
    fixed = space.for_run("base", "none", config("base"), fixed_keys=["train.learning_rate"])
    assert "learning_rate" not in names(fixed)
    assert dict(fixed.dropped)["learning_rate"] == "train.learning_rate is fixed by --set"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("params:\n  lr: {key: train.learning_rat, low: 0.001, high: 0.1}\n", "params.lr.key"),
        ("params:\n  lr: {key: train.learning_rate, low: 0.1, high: 0.01}\n", "params.lr"),
        ("params:\n  lr: {key: train.learning_rate, lo: 0.1, high: 0.01}\n", "params.lr.lo"),
        ("params:\n  d: {key: model.dropout, values: []}\n", "params.d.values"),
        ("sampler: grid\nparams:\n  d: {key: model.dropout, low: 0.0, high: 0.5}\n", "params.d"),
        ("sampler: random\nparams:\n  d: {key: model.dropout, values: [0.1]}\n", "sampler"),
        ("params:\n  lr: {key: train.learning_rate, low: abc, high: 0.1}\n", "params.lr.low"),
        (
            "pruner: {name: median, warmup_epochs: -1}\nparams:\n  d: {key: model.dropout, "
            "values: [0.1]}\n",
            "pruner.warmup_epochs",
        ),
        ("params:\n  d: {key: model.dropout, values: [0.1]}\nextra: 1\n", "extra"),
    ],
)
def test_a_bad_space_file_is_one_line_naming_the_file_and_key(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as failure:
        load_space(str(path))
    message = str(failure.value)
    assert message.startswith(f"{path}: {where}") and "\n" not in message


def test_values_are_checked_against_the_model_config(tmp_path: Path) -> None:
    path = tmp_path / "space.yaml"
    path.write_text("params:\n  d: {key: model.dropout, values: [0.1, high]}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: params.d: 'model.dropout' expects float"):
        load_space(str(path)).for_run("din", "none", config("din"))
    path.write_text("params:\n  b: {key: train.batch_size, low: 64, high: 512, type: float}\n")
    with pytest.raises(ConfigError, match=rf"^{path}: params.b: train.batch_size is an integer"):
        load_space(str(path)).for_run("din", "none", config("din"))
    with pytest.raises(ConfigError, match="no such search space file or packaged space"):
        load_space("no-such-space")


def test_study_name_changes_with_what_makes_trials_comparable() -> None:
    din = load_space("recbole").for_run("din", "none", config("din"))
    base = load_space("recbole").for_run("base", "none", config("base"))
    name = study_name("amazon", "din", "none", din, "sha256:aa", "sha256:cc")
    assert name.startswith("din-tune/amazon/din+none/recbole/")
    assert name == study_name("amazon", "din", "none", din, "sha256:aa", "sha256:cc")
    others = {
        study_name("amazon", "din", "none", base, "sha256:aa", "sha256:cc"),
        study_name("amazon", "din", "none", din, "sha256:ab", "sha256:cc"),
        study_name("amazon", "din", "none", din, "sha256:aa", "sha256:cd"),
        study_name("amazon", "din", "none", din, "sha256:aa", "sha256:cc", max_len=20),
    }
    assert name not in others and len(others) == 4


def test_tpe_is_seeded_and_a_grid_is_walked_once() -> None:
    space = load_space("default").for_run("din", "none", config("din"))

    def first_params(seed: int) -> list[dict]:
        study = optuna.create_study(sampler=make_sampler(space, seed), direction="maximize")
        return [suggest(study.ask(), space) for _ in range(3)]

    assert first_params(7) == first_params(7) != first_params(8)

    grid = load_space("recbole").for_run("lr", "none", config("lr"))
    study = optuna.create_study(sampler=make_sampler(grid, 0), direction="maximize")
    assert isinstance(study.sampler, AskAndTellGridSampler)
    seen = []
    while grid_points_left(study, grid):
        trial = study.ask()
        seen.append(suggest(trial, grid)["learning_rate"])
        study.tell(trial, 0.5)  # the grid's last point: no RuntimeError from study.stop()
    assert sorted(seen) == sorted([0.01, 0.005, 0.001, 0.0005, 0.0001])
    assert target_trials(grid, 100, None) == 5 and target_trials(grid, 2, None) == 2
    assert target_trials(space, None, None) == 20 and target_trials(space, None, 60.0) is None


def test_warmup_epochs_are_never_pruned(tmp_path: Path) -> None:
    """A threshold above any GAUC (GAUC <= 1) prunes at the first epoch after the warm-up."""
    path = tmp_path / "space.yaml"
    path.write_text(
        "pruner: {name: threshold, lower: 1.01, warmup_epochs: 1}\n"
        "params:\n  d: {key: model.dropout, values: [0.1]}\n"
    )
    space = load_space(str(path))
    study = optuna.create_study(pruner=make_pruner(space.pruner), direction="maximize")
    reporter = EpochReporter(study.ask())
    reporter({"epoch": 1, "valid_gauc": 0.61})
    with pytest.raises(optuna.TrialPruned, match="after epoch 2"):
        reporter({"epoch": 2, "valid_gauc": 0.64})
    assert reporter.best["epoch"] == 2


def test_trials_of_a_dead_process_are_failed_and_live_ones_kept() -> None:
    from tasks.tuning_storage import owner_attrs, owner_is_dead

    study = optuna.create_study(direction="maximize")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)  # exited and reaped: no such process any more
    mine, theirs = study.ask(), study.ask()
    for key, value in owner_attrs().items():
        mine.set_user_attr(key, value)
        theirs.set_user_attr(key, value)
    theirs.set_user_attr("din.pid", str(dead_pid))
    theirs.set_user_attr("din.pid_start", "")
    assert fail_stale_trials(study, owner_is_dead) == [theirs.number]
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {mine.number: TrialState.RUNNING, theirs.number: TrialState.FAIL}


def test_the_best_config_is_the_trial_config() -> None:
    space = load_space("recbole").for_run("base", "none", config("base"))
    best = {"learning_rate": 0.01, "dropout_prob": 0.2, "mlp_hidden_size": "[128, 128, 128]",
            "pooling_mode": "max"}  # fmt: skip
    resolved = trial_config("base", "amazon", config("base"), space, best)
    assert resolved["model"]["mlp_hidden"] == [128, 128, 128]
    assert resolved["model"]["pooling_mode"] == "max"
    assert resolved["train"]["learning_rate"] == 0.01 and resolved["model"]["dropout"] == 0.2


def test_trials_and_timeout_are_exclusive_on_the_command_line(capsys) -> None:
    from flows.cli import main

    with pytest.raises(SystemExit) as stop:
        main(["tune", "--dataset", "amazon", "--trials", "3", "--timeout", "60"])
    assert stop.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_din_tune_names_a_bad_space_file_before_starting_anything(tmp_path: Path, capsys) -> None:
    from flows.cli import main

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  dropout: {key: model.dropout, low: abc, high: 0.5}\n")
    argv = ["tune", "--dataset", "amazon", "--model", "din", "--space", str(space)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"din tune: error: {space}: params.dropout.low: expected a number, got 'abc'"
    space.write_text("params:\n  pooling: {key: model.pooling_mode, values: [sum, max]}\n")
    assert main(argv) == 2
    assert "no parameter of this space applies to din" in capsys.readouterr().err
