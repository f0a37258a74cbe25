"""bench.serving runs end to end on tiny settings and reports every figure it promises
(no timing is checked here: latency and throughput depend on the machine and its load,
see the module's docstring)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.serving import LATENCY_VARIANTS, THROUGHPUT_RUNTIMES, main

PERCENTILES = {"p50_ms", "p99_ms", "mean_ms"}


def test_the_serving_benchmark_reports_latency_and_throughput(tmp_path: Path, capsys) -> None:
    out = tmp_path / "serving.json"
    argv = [
        "--out", str(out), "--work", str(tmp_path / "work"), "--calls", "20", "--warmup", "2",
        "--scale", "0.002", "--rows", "1500", "--repeat", "1", "--history", "12",
        "--candidates", "10", "--threads", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == "serving"
    assert result["command"].startswith("python -m bench.serving --out")
    assert {"cpu", "cores", "torch_threads", "torch", "load_avg_start"} <= set(result["machine"])
    setup = result["setup"]
    assert (setup["model"], setup["preset"], setup["embedding_dim"]) == ("din_dice", "paper", 64)
    assert (setup["history"], setup["candidates"], setup["calls"]) == (12, 10, 20)
    assert setup["throughput_rows"] == 1500

    assert tuple(result["latency"]) == LATENCY_VARIANTS
    for entry in result["latency"].values():
        assert set(entry) >= PERCENTILES and entry["calls"] == 20
        assert set(entry["encode"]) >= PERCENTILES and set(entry["network"]) >= PERCENTILES
        assert 0 < entry["p50_ms"] <= entry["p99_ms"]
        assert 0 <= entry["encode_share_p50"] <= 1
        assert isinstance(entry["p99_target_met"], bool)
    key_projection = result["key_projection"]
    assert key_projection["applies"] is True
    assert {"p50_speedup", "p99_speedup", "network_p50_speedup"} <= set(key_projection)
    # correctness, not timing: the ranking path and ONNX score as eager PyTorch does
    assert key_projection["max_abs_diff"] <= 1e-5
    assert result["latency"]["onnx"]["max_abs_diff_vs_torch"] <= 1e-5

    assert tuple(result["throughput"]) == THROUGHPUT_RUNTIMES
    for entry in result["throughput"].values():
        assert entry["rows"] == 1500
        assert entry["score_rows_per_s"] > 0 and entry["network_rows_per_s"] > 0
        assert 0 < entry["encode_share"] < 1 and 0 < entry["pandas_encode_share"] < 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ranking: 1 user x 10 candidates, history 12, 1 threads")
    assert any(line.startswith("torch+key_projection") for line in lines)
    assert any(line.startswith("batch scoring: 1,500 raw rows") for line in lines)
    assert lines[-1] == f"wrote {out}"
