"""``din serve``'s deployment parameters (flags, file), its UI's API URL, ``din ui``'s port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from _pipeline_support import free_port

from din_model.errors import ConfigError

BIN = Path(sys.executable).parent


def test_flags_give_sources_and_yaml_typed_parameters(tmp_path: Path, monkeypatch) -> None:
    from flows.deployments import merge_parameters, parse_param_flags, parse_source_flags

    monkeypatch.chdir(tmp_path)
    sources = parse_source_flags(["movielens=data/ml-100k", "amazon=synthetic"])
    assert sources == {
        "movielens": {"source": str(tmp_path / "data" / "ml-100k")},  # relative to the cwd
        "amazon": {"source": "synthetic"},
    }
    params = parse_param_flags(
        [
            "movielens.window=8w",
            "movielens.warm_start=true",
            "movielens.min_gain=0.001",
            "movielens.seed=7",
            "movielens.reg=mba",  # the CLI's short spelling is the same parameter
            "amazon.overrides=[train.epochs=2]",
            "amazon.logloss_tolerance=null",
        ]
    )
    assert params == {
        "movielens": {
            "window": "8w",
            "warm_start": True,
            "min_gain": 0.001,
            "seed": 7,
            "regularizer": "mba",
        },
        "amazon": {"overrides": ["train.epochs=2"], "logloss_tolerance": None},
    }
    merged = merge_parameters({"movielens": {"source": "auto", "seed": 1}}, sources, params)
    assert merged["movielens"]["source"] == str(tmp_path / "data" / "ml-100k")
    assert merged["movielens"]["seed"] == 7


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--source", "nosuch=/data", "--source nosuch=/data: unknown dataset 'nosuch'"),
        ("--source", "movielens", "--source 'movielens': expected DATASET=PATH"),
        ("--param", "movielens.regularisation=mba", "'regularisation' is not a din-train param"),
        ("--param", "movielens.dataset=amazon", "'dataset' is not a din-train parameter"),
        ("--param", "movielens=8w", "expected DATASET.NAME=VALUE"),
        ("--param", "movielens.window=[8w", "the value is not a YAML scalar"),
    ],
)
def test_bad_flags_are_one_line_errors(flag: str, value: str, message: str) -> None:
    from flows.deployments import parse_param_flags, parse_source_flags

    parse = parse_source_flags if flag == "--source" else parse_param_flags
    with pytest.raises(ConfigError) as caught:
        parse([value])
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_deployments_file(tmp_path: Path) -> None:
    from flows.deployments import effective_parameters, load_deployments_file

    file = tmp_path / "conf" / "deployments.yaml"
    file.parent.mkdir()
    file.write_text(
        "cron: '*/5 * * * *'\n"
        "deployments:\n"
        "  movielens:\n"
        "    source: ../ml-100k\n"
        "    model: din\n"
        "    regularizer: none\n"
        "    window: 8w\n"
        "    warm_start: true\n"
        "    config_file: paper\n"
    )
    parameters, cron = load_deployments_file(file)
    assert cron == "*/5 * * * *"
    assert parameters["movielens"]["source"] == str(tmp_path / "ml-100k")  # the file's folder
    assert parameters["movielens"]["config_file"] == "paper"  # a preset, not a path
    effective = effective_parameters("movielens", parameters)
    assert effective["skip_unchanged"] is True  # the deployments' default
    assert effective["window"] == "8w" and effective["warm_start"] is True
    assert effective_parameters("amazon", parameters)["source"] == "auto"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deployments:\n  nosuch: {source: x}\n", "deployments: unknown dataset 'nosuch'"),
        ("deployments:\n  movielens: {windw: 8w}\n", "deployments.movielens.windw: 'windw' is"),
        ("schedule: daily\n", "unknown key 'schedule' (expected deployments, cron)"),
        ("deployments:\n  movielens: 3\n", "deployments.movielens: expected a mapping"),
        ("deployments: [\n", ":2: invalid YAML"),
    ],
)
def test_bad_deployments_files_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    from flows.deployments import load_deployments_file

    file = tmp_path / "deployments.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_deployments_file(file)
    assert str(caught.value).startswith(str(file)), caught.value
    assert message in str(caught.value)


def _din(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [str(BIN / "din"), *args],
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_serve_refuses_an_unknown_parameter_before_serving(tmp_path: Path) -> None:
    file = tmp_path / "d.yaml"
    file.write_text("deployments:\n  movielens: {regularisation: mba}\n")
    done = _din("serve", "--datasets", "movielens", "--deployments", str(file), cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"din serve: error: {file}: deployments.movielens.regularisation")
    # a source outside the data roots is refused too, naming the deployment
    outside = tmp_path / "elsewhere"
    env = dict(os.environ, DIN_DATA_ROOTS=str(tmp_path / "data"))
    done = _din("serve", "--datasets", "movielens", "--source", f"movielens={outside}", env=env)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "din-train/movielens: parameter source" in line and "outside the allowed" in line


def test_ui_on_a_busy_port_exits_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _din("ui", "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"din ui: error: port {port} on 127.0.0.1 is already in use")
    assert "MLflow UI on" not in done.stdout  # stopped before starting anything


@pytest.mark.slow
def test_a_server_started_on_another_port_has_its_ui_talk_to_that_port(
    tmp_path: Path, monkeypatch
) -> None:
    from flows.server import local_server

    port = free_port()
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    for key in ("PREFECT_UI_API_URL", "PREFECT_SERVER_UI_API_URL"):
        monkeypatch.delenv(key, raising=False)
    settings_url = f"http://127.0.0.1:{port}/ui-settings"
    with (
        local_server(None, port, startup_timeout=180) as url,
        urllib.request.urlopen(settings_url, timeout=10) as response,
    ):
        settings = json.load(response)
    assert url == f"http://127.0.0.1:{port}/api"
    assert settings["api_url"] == url
