"""Champion and challenger head to head through real registered models (tasks.champion),
the alias history, ``din champion --set`` and the lock against a concurrent judge.

One module-scoped pair of tiny DIN models trained with different seeds on the real
Amazon Magazine_Subscriptions (2018) is logged once as pyfunc models; each test
registers the pair under its own registered-model name (a registration is a row in
the store pointing at the logged model), so the tests do not share an alias.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from din_model.pipeline.promotion import (
    ModelIdentity,
    PromotionPolicy,
    head_to_head,
    load_policy,
)

REPO = Path(__file__).resolve().parents[2]
FAMILY = "amazon/amazon-2018/Magazine_Subscriptions"
REAL = ModelIdentity(None, FAMILY, synthetic=False)
SYNTHETIC = ModelIdentity(None, "amazon/amazon-2018/synthetic", synthetic=True)
SPLIT_SEED, MAX_LEN = 11, 20
TINY = {
    "model": {"embedding_dim": 8, "mlp_hidden": [16], "attention_hidden": [16]},
    "train": {"epochs": 1, "batch_size": 256, "progress": "none", "num_threads": 1},
}
FAST = PromotionPolicy(resamples=200)  # the bootstrap's size does not matter to these tests
NEVER = PromotionPolicy(min_gain=1.0, resamples=200)  # a GAUC gain can never exceed 1
# GAUC differences lie in [-1, 1]: an interval always lies above -1.5; LogLoss within 1e9
ALWAYS = PromotionPolicy(min_gain=-1.5, logloss_tolerance=1e9, resamples=200)


@dataclass(frozen=True)
class Logged:
    run_id: str
    model_uri: str


@dataclass(frozen=True)
class Pair:
    models: tuple[Logged, Logged]
    slice: pl.DataFrame  # the test split as raw requests + label


@pytest.fixture(scope="module")
def pair(module_store: str, amazon_magazine: Path, tmp_path_factory) -> Pair:
    from mlflow import MlflowClient

    from din_model.data.adapters import ingest
    from din_model.pipeline import fit_and_score
    from din_model.pipeline.prepare import prepare_dataset, raw_samples
    from tasks.model_logging import log_pyfunc_model
    from tasks.store import configure_mlflow, ensure_experiment

    configure_mlflow()
    root = tmp_path_factory.mktemp("champion")
    prepared = root / "prepared"
    prepare_dataset("amazon", amazon_magazine, prepared, seed=SPLIT_SEED, max_len=MAX_LEN)
    experiment = ensure_experiment("amazon")
    client = MlflowClient()
    models = []
    for seed in (1, 2):
        config = {**TINY, "train": {**TINY["train"], "seed": seed}}
        result = fit_and_score(prepared, root / f"seed{seed}", "din", None, config)
        run = client.create_run(experiment, run_name=f"seed{seed}",
                                tags={"data_family": FAMILY, "data_source": "real"})  # fmt: skip
        info = log_pyfunc_model(
            run.info.run_id, result.layout.best_checkpoint, result.layout.serving, None
        )
        client.set_terminated(run.info.run_id)
        models.append(Logged(run.info.run_id, info.model_uri))
    raw = raw_samples(ingest("amazon", amazon_magazine), seed=SPLIT_SEED, max_len=MAX_LEN)
    return Pair((models[0], models[1]), raw)


def register(pair: Pair, name: str) -> tuple[str, str]:
    """The pair as versions 1 and 2 of a new registered model ``name``."""
    import mlflow

    return tuple(str(mlflow.register_model(m.model_uri, name).version) for m in pair.models)


def alias(name: str) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def outcome_tags(name: str, version: str, run_id: str) -> tuple[dict, dict, dict]:
    from mlflow import MlflowClient

    client = MlflowClient()
    run = client.get_run(run_id).data
    return client.get_model_version(name, version).tags, run.tags, run.metrics


def judge(name: str, version: str, pair: Pair, index: int, identity=REAL, policy=FAST) -> dict:
    from tasks.champion import judge_and_promote

    run_id = pair.models[index].run_id
    return judge_and_promote(name, version, run_id, pair.slice, "magazine-test", identity, policy)


def test_head_to_head_moves_the_alias_only_when_the_rule_says_so(pair: Pair) -> None:
    from tasks.champion import registered_scores
    from tasks.champion_history import alias_history

    name = "din-h2h"
    v1, v2 = register(pair, name)
    first = judge(name, v1, pair, 0)
    assert (first["promoted"], first["kind"], first["champion_version"]) == (True, "first", None)
    assert first["h2h"] is None and first["challenger"]["h2h_rows"] == pair.slice.height
    assert alias(name) == v1
    version_tags, run_tags, _ = outcome_tags(name, v1, pair.models[0].run_id)
    assert version_tags["champion_promoted"] == run_tags["champion_promoted"] == "true"
    assert version_tags["data_family"] == FAMILY and "challenger_gauc" in version_tags

    kept = judge(name, v2, pair, 1, policy=NEVER)
    assert (kept["promoted"], kept["kind"], kept["champion_version"]) == (False, "keep", v1)
    assert alias(name) == v1

    # the numbers on the run and the version equal an independent scoring of the slice
    requests = pair.slice.drop("label")
    users, labels = pair.slice["user_id"].to_numpy(), pair.slice["label"].to_numpy()
    expected = head_to_head(
        users, labels, registered_scores(name, v2, requests),
        registered_scores(name, v1, requests), NEVER, "magazine-test",
    )  # fmt: skip
    version_tags, run_tags, run_metrics = outcome_tags(name, v2, pair.models[1].run_id)
    for key, value in expected.as_metrics().items():
        # Tags hold 10 significant digits (relative rounding <= 5e-10); the models score
        # the same frame on the same CPU threads twice, so the values themselves agree.
        assert float(version_tags[key]) == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert float(run_tags[key]) == pytest.approx(value, rel=1e-9, abs=1e-12), key
        assert run_metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert expected.rows == pair.slice.height == 696 and expected.users == 348
    for tags in (version_tags, run_tags):
        assert tags["champion_version"] == v1 and tags["champion_promoted"] == "false"
        assert tags["h2h_slice"] == "magazine-test"
        assert tags["champion_decision"] == kept["decision"]
        assert f"{expected.diff.low:+.4f}" in tags["champion_decision"]

    promoted = judge(name, v2, pair, 1, policy=ALWAYS)
    assert (promoted["promoted"], promoted["kind"]) == (True, "promote")
    assert alias(name) == v2

    # the default policy: the alias moves exactly when the interval and LogLoss say so
    policy = load_policy({"resamples": 200})
    back = judge(name, v1, pair, 0, policy=policy)
    h2h = back["h2h"]
    wins = h2h["gauc_diff_low"] > policy.min_gain and (
        h2h["challenger_logloss"] - h2h["champion_logloss"] <= policy.logloss_tolerance
    )
    assert back["promoted"] == wins and alias(name) == (v1 if wins else v2)

    history = alias_history(name)
    assert [(e["kind"], e["version"], e["previous"]) for e in history[:2]] == [
        ("first", v1, None), ("promote", v2, v1)
    ]
    assert len(history) == 3 if wins else 2
    assert history[1]["run_id"] == pair.models[1].run_id


def test_synthetic_challenger_never_displaces_a_real_champion(pair: Pair) -> None:
    name = "din-synthetic"
    v1, v2 = register(pair, name)
    judge(name, v1, pair, 0)
    outcome = judge(name, v2, pair, 1, identity=SYNTHETIC, policy=ALWAYS)
    assert (outcome["promoted"], outcome["kind"]) == (False, "synthetic_over_real")
    assert outcome["h2h"] is None  # decided without scoring the champion
    assert alias(name) == v1
    version_tags, run_tags, _ = outcome_tags(name, v2, pair.models[1].run_id)
    for tags in (version_tags, run_tags):
        assert "never synthetic over real" in tags["champion_decision"]
        assert tags["champion_promoted"] == "false"
    assert version_tags["data_source"] == "synthetic"


def test_rollback_with_din_champion_set_is_recorded(pair: Pair, capsys) -> None:
    from flows.cli import main
    from tasks.champion_history import alias_history

    name = "din-amazon"
    v1, v2 = register(pair, name)
    judge(name, v1, pair, 0)
    judge(name, v2, pair, 1, policy=ALWAYS)
    assert alias(name) == v2

    assert main(["champion", "--dataset", "amazon", "--set", v1,
                 "--reason", "v2 mis-ranks new users"]) == 0  # fmt: skip
    assert alias(name) == v1
    last = alias_history(name)[-1]
    assert (last["kind"], last["version"], last["previous"]) == ("rollback", v1, v2)
    assert last["reason"] == "v2 mis-ranks new users"
    assert "v2 mis-ranks new users" in outcome_tags(name, v1, pair.models[0].run_id)[0][
        "champion_decision"
    ]

    capsys.readouterr()
    assert main(["champion", "--dataset", "amazon"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["time", "version", "previous", "kind", "reason", "run"]
    assert [line.split()[3] for line in out[1:4]] == ["first", "promote", "rollback"]
    assert out[-1].startswith(f"current champion: {name} v{v1}")

    assert main(["champion", "--dataset", "amazon", "--set", "9"]) == 2
    assert "din-amazon has no version 9 (versions: 1, 2)" in capsys.readouterr().err
    assert alias(name) == v1


RACER = """
import json, sys, time
from pathlib import Path
import polars as pl
from din_model.pipeline.promotion import ModelIdentity, PromotionPolicy
from tasks.champion import judge_and_promote
name, version, run_id, frame, go = sys.argv[1:6]
slice_frame = pl.read_parquet(frame)
while not Path(go).exists():
    time.sleep(0.01)
identity = ModelIdentity(version, sys.argv[6], False)
result = judge_and_promote(
    name, version, run_id, slice_frame, "race", identity, PromotionPolicy(resamples=200)
)
print(json.dumps(result))
"""


def test_two_concurrent_judges_serialize(pair: Pair, tmp_path: Path) -> None:
    """Without the lock both racers would read "no champion" and both become first."""
    from tasks.champion_history import alias_history

    name = "din-race"
    versions = register(pair, name)
    frame, go = tmp_path / "slice.parquet", tmp_path / "go"
    pair.slice.head(200).write_parquet(frame)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, name, version, model.run_id, str(frame), str(go),
             FAMILY],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for version, model in zip(versions, pair.models, strict=True)
    ]
    time.sleep(0.5)
    go.touch()  # both start judging at the same moment
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=240)
        assert racer.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    kinds = sorted(r["kind"] for r in results)
    assert kinds.count("first") == 1, results
    first = next(r for r in results if r["kind"] == "first")
    second = next(r for r in results if r["kind"] != "first")
    # the second was judged head to head against the first's fresh result
    assert second["champion_version"] == first["version"] and second["h2h"] is not None
    history = alias_history(name)
    assert [e["kind"] for e in history] == ["first"] + (["promote"] if second["promoted"] else [])
    assert alias(name) == (second["version"] if second["promoted"] else first["version"])


def test_a_held_lock_times_out_with_one_line_naming_it(tmp_path: Path, monkeypatch) -> None:
    from filelock import FileLock

    from tasks.champion_lock import ChampionLockTimeout, champion_lock, lock_file

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}")
    path = lock_file("din-x")
    assert path == tmp_path / "store" / "locks" / "champion-din-x.lock"
    path.parent.mkdir(parents=True)
    message = f"{path}: the champion lock of din-x"
    # another holder (flock locks of two open files conflict, even in one process)
    with FileLock(str(path)), pytest.raises(ChampionLockTimeout, match=message):  # noqa: SIM117
        with champion_lock("din-x", timeout=0.2):
            pass
    with champion_lock("din-x", timeout=0.2) as held:  # free again once released
        assert held == path
