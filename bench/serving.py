"""Serving latency and throughput of the raw-request path (``RawScorer``), in process.

Run: ``.venv/bin/python -m bench.serving [--out FILE.json] [--calls 1000] [--threads 2]``.

Setup (in ``--work`` or a temporary folder): ``din synth amazon --scale S``,
``din prepare``, and a one-epoch fit of ``din_dice`` at the ``paper`` preset
(embeddings 64, activation unit 80-40, MLP 200-80, Dice): a real model, prepared
and served through the raw path; its weights' values do not matter for timing.

* **Latency**: one ranking call, one user with ``--history`` events (50) against
  ``--candidates`` (100) raw item ids, through :meth:`RawScorer.rank`, ``--threads``
  CPU threads (``torch.set_num_threads`` / ONNX Runtime ``intra_op_num_threads``);
  p50 and p99 over ``--calls`` calls after ``--warmup`` calls, for eager PyTorch
  without the key projection (``torch``: the plain network), eager PyTorch through
  ``rank`` itself, which computes the key projection once per request
  (``torch+key_projection``, :mod:`din_model.serving.ranking`), and ONNX Runtime
  (``onnx``). The variants take turns in ``--rounds`` blocks of consecutive calls (a
  change of load hits them alike, and no runtime's spinning idle threads compete with
  another's call). Each call is also timed in two
  parts (the same steps as ``rank``: encoding of the request, then the network).
* **Throughput**: batch scoring of ``--rows`` raw rows of the synthetic set's
  training split (:func:`din_model.pipeline.prepare.raw_samples`), rows/s of
  :meth:`RawScorer.score` next to the network alone on the same rows already
  encoded (``network.score``), and the share of the time that encoding takes,
  for a polars frame and for a pandas frame (what the MLflow pyfunc receives).

Why a benchmark and not a test: the figures depend on the machine and on its load
(recorded in the result's ``machine`` section, with the load average at the start and
the end). ``tests/bench/test_serving_bench.py`` checks the result's shape only.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: targets of the issue "Serving for real"
P99_TARGET_MS = 5.0
ENCODE_SHARE_TARGET = 0.5
LATENCY_VARIANTS = ("torch", "torch+key_projection", "onnx")
SETUP_FILE = "setup.json"  # what --reuse reads back
SETTLE_CALLS = 10  # untimed calls of a variant after another one ran
THROUGHPUT_RUNTIMES = ("torch", "onnx")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="result file (JSON)")
    parser.add_argument("--calls", type=int, default=1000, help="timed ranking calls per variant")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per variant first")
    parser.add_argument(
        "--rounds", type=int, default=5, help="blocks of calls per variant, taking turns"
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch and ORT)")
    parser.add_argument("--history", type=int, default=50, help="events in the user's history")
    parser.add_argument("--candidates", type=int, default=100, help="candidates per ranking call")
    parser.add_argument("--rows", type=int, default=100_000, help="raw rows of the throughput")
    parser.add_argument("--repeat", type=int, default=3, help="throughput passes (median taken)")
    parser.add_argument("--scale", type=float, default=0.05, help="synthetic Amazon scale")
    parser.add_argument("--model", default="din_dice", help="model to train (default din_dice)")
    parser.add_argument("--config", default="paper", help="preset or config file (paper)")
    parser.add_argument("--batch-size", type=int, default=1024, help="training batch size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the request")
    parser.add_argument("--work", type=Path, default=None, help="keep data and run here")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the data and run an earlier call left in --work (same settings)",
    )
    parser.add_argument(
        "--profile-encoding",
        action="store_true",
        help="profile the raw encoder's batch encoding (also done when it is over half the time)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        result = run(args, args.work)
    else:
        with tempfile.TemporaryDirectory(prefix="din-bench-serving-") as scratch:
            result = run(args, Path(scratch))
    given = sys.argv[1:] if argv is None else argv
    result["command"] = " ".join(["python -m bench.serving", *(shlex.quote(a) for a in given)])
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    if args.out is not None:
        print(f"wrote {args.out}")
    return 0


# -- setup ---------------------------------------------------------------------------
def setup_run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Synthetic Amazon data, prepared, and a one-epoch fit: the run folder and its figures."""
    from bench.steps import prepare, synth
    from din_model.config import resolve_config
    from din_model.pipeline import fit_and_score

    raw, prepared, run_dir = work / "raw", work / "prepared", work / "run"
    recorded = work / SETUP_FILE
    if args.reuse and recorded.is_file() and (run_dir / "checkpoints" / "best.pt").is_file():
        info = json.loads(recorded.read_text())
        return {"raw": raw, "run": run_dir, "info": {**info, "reused": True}}
    started = time.perf_counter()
    counts = synth(raw, args.scale, args.seed)["counts"]
    report = prepare("amazon", raw, prepared, args.seed)
    config = resolve_config(
        args.model,
        "amazon",
        config_file=args.config,
        overrides=[
            "train.epochs=1",
            "train.device=cpu",
            "train.progress=none",
            f"train.batch_size={args.batch_size}",
            f"train.num_threads={args.threads}",
        ],
    )
    fit_and_score(prepared, run_dir, args.model, None, config, force=True, resume=False)
    model = config["model"]
    info = {
        "dataset": "amazon (synthetic)",
        "scale": args.scale,
        "seed": args.seed,
        "counts": counts,
        "samples": report["samples"],
        "model": args.model,
        "preset": args.config,
        "embedding_dim": model["embedding_dim"],
        "attention_hidden": model.get("attention_hidden"),
        "mlp_hidden": model["mlp_hidden"],
        "activation": model["activation"],
        "setup_seconds": round(time.perf_counter() - started, 2),
    }
    if args.work is not None:
        recorded.write_text(json.dumps(info, indent=2) + "\n")
    return {"raw": raw, "run": run_dir, "info": {**info, "reused": False}}


def ranking_request(
    serving_dir: Path, history: int, candidates: int, seed: int
) -> tuple[dict[str, Any], list[str]]:
    """One user (a ``history``-event history of known items, oldest first) and N candidates."""
    import polars as pl

    from din_model.data.samples.raw_inputs import ITEMS_FILE

    items = pl.read_parquet(serving_dir / ITEMS_FILE)["item_id"].cast(pl.String).to_list()
    rng = np.random.default_rng(seed)
    past = [items[i] for i in rng.choice(len(items), history, replace=history > len(items))]
    shown = [items[i] for i in rng.choice(len(items), candidates, replace=candidates > len(items))]
    user = {"timestamp": 1_400_000_000, "history_item_id": past}
    return user, shown


# -- load of the machine -------------------------------------------------------------
class OtherLoad:
    """How busy the CPUs were with other processes while a block ran (``/proc/stat``).

    ``others_cores``: CPU-seconds per second spent outside this process (other
    processes, the kernel's work for them, and time stolen by the hypervisor), in
    cores; on a 2-core machine 1.0 means a whole core was taken from the benchmark.
    """

    def __enter__(self) -> OtherLoad:
        self.result: dict[str, float] | None = None
        self._start = (time.perf_counter(), time.process_time(), _cpu_jiffies())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, own0, jiffies0 = self._start
        wall, own, jiffies = time.perf_counter() - wall0, time.process_time() - own0, _cpu_jiffies()
        if jiffies is None or jiffies0 is None or wall <= 0:
            return
        tick = os.sysconf("SC_CLK_TCK")
        busy = (jiffies[0] - jiffies0[0]) / tick
        steal = (jiffies[1] - jiffies0[1]) / tick
        self.result = {
            "seconds": round(wall, 2),
            "others_cores": round(max(0.0, busy - own) / wall, 3),
            "steal_cores": round(steal / wall, 3),
        }


def _cpu_jiffies() -> tuple[int, int] | None:
    """(busy, steal) jiffies of all CPUs since boot; None where /proc/stat is missing."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    steal = values[7] if len(values) > 7 else 0
    guest = sum(values[8:10])  # already counted in user / nice
    return sum(values) - idle - guest, steal


# -- latency -------------------------------------------------------------------------
def rank_in_parts(
    scorer: Any, score: Callable[[Mapping[str, Any]], np.ndarray], user: dict, candidates: list
) -> tuple[np.ndarray, float, float]:
    """The steps of :meth:`RawScorer.rank`, with ``score`` for the network: (scores, s, s)."""
    started = time.perf_counter()
    inputs = scorer.encoder.encode_plain_ranking(user, candidates)
    if inputs is None:  # rank would have taken the frame path: so does the benchmark
        raise ValueError("the benchmark's request is not plain values")
    encoded = time.perf_counter()
    scores = score(inputs)
    return scores, encoded - started, time.perf_counter() - encoded


def _percentiles(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
    }


def measure_latency(
    scorers: Mapping[str, Any],
    user: dict,
    candidates: list,
    calls: int,
    warmup: int,
    rounds: int = 5,
) -> dict[str, Any]:
    """p50/p99 of every variant's ranking call, and of its encoding and network parts."""
    def whole(name: str) -> Callable[[], Any]:
        scorer = scorers[name]
        if name == "torch":  # the plain network, every candidate's full activation unit
            return lambda: rank_in_parts(scorer, scorer.network.score, user, candidates)[0]
        if name == "torch+key_projection":
            assert scorer.ranking.uses_key_projection, "the eager DIN should take it"
        return lambda: scorer.rank(user, candidates)  # what a server calls

    def parts(name: str) -> Callable[[], tuple[np.ndarray, float, float]]:
        scorer = scorers[name]
        score = scorer.network.score if name == "torch" else scorer.ranking.score
        return lambda: rank_in_parts(scorer, score, user, candidates)

    calls_whole = {name: whole(name) for name in scorers}
    calls_parts = {name: parts(name) for name in scorers}
    totals: dict[str, list[float]] = {name: [] for name in scorers}
    encode: dict[str, list[float]] = {name: [] for name in scorers}
    network: dict[str, list[float]] = {name: [] for name in scorers}
    for name in scorers:
        for _ in range(warmup):
            calls_whole[name]()
            calls_parts[name]()
    # Variants take turns in blocks of consecutive calls, so that a change of load hits all
    # of them alike, while no variant runs between two calls of another: a runtime's idle
    # worker threads spin for a while after a call (ONNX Runtime's pool, OpenMP's), which
    # would take a core from the next call of the other runtime, as no real server does.
    block = -(-calls // rounds)
    for start in range(0, calls, block):
        for name in scorers:
            for _ in range(SETTLE_CALLS):  # untimed: the previous variant's threads go idle
                calls_whole[name]()
            for _ in range(min(block, calls - start)):
                started = time.perf_counter()
                calls_whole[name]()
                totals[name].append(time.perf_counter() - started)
                _, enc, net = calls_parts[name]()
                encode[name].append(enc)
                network[name].append(net)
    reference = np.asarray(calls_whole["torch"]()) if "torch" in scorers else None
    out: dict[str, Any] = {}
    for name in scorers:
        entry: dict[str, Any] = {"calls": calls, **_percentiles(totals[name])}
        entry["encode"] = _percentiles(encode[name])
        entry["network"] = _percentiles(network[name])
        entry["encode_share_p50"] = round(
            entry["encode"]["p50_ms"] / (entry["encode"]["p50_ms"] + entry["network"]["p50_ms"]), 4
        )
        if reference is not None:
            diff = np.abs(np.asarray(calls_whole[name]()) - reference).max()
            entry["max_abs_diff_vs_torch"] = float(diff)
        entry["p99_target_met"] = entry["p99_ms"] <= P99_TARGET_MS
        out[name] = entry
    return out


# -- throughput ----------------------------------------------------------------------
def measure_throughput(
    scorers: Mapping[str, Any], rows: Any, repeat: int
) -> dict[str, Any]:
    """rows/s of ``RawScorer.score`` and of the network alone; encoding's share of the time."""
    pandas_rows = rows.to_pandas()
    out: dict[str, Any] = {}
    for name, scorer in scorers.items():
        scorer.score(rows)  # warm-up at full size: allocations, kernel choice, ORT's arena
        encode_s, network_s, total_s, pandas_encode_s = [], [], [], []
        for _ in range(repeat):
            started = time.perf_counter()
            inputs = scorer.encoder.encode(rows)
            encoded = time.perf_counter()
            scorer.network.score(inputs)
            finished = time.perf_counter()
            encode_s.append(encoded - started)
            network_s.append(finished - encoded)
            started = time.perf_counter()
            scorer.score(rows)
            total_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            scorer.encoder.encode(pandas_rows)
            pandas_encode_s.append(time.perf_counter() - started)
        n = rows.height
        enc, net, tot = (float(np.median(v)) for v in (encode_s, network_s, total_s))
        pandas_enc = float(np.median(pandas_encode_s))
        out[name] = {
            "rows": n,
            "repeat": repeat,
            "score_rows_per_s": round(n / tot, 1),
            "network_rows_per_s": round(n / net, 1),
            "encode_rows_per_s": round(n / enc, 1),
            "score_seconds": round(tot, 4),
            "encode_seconds": round(enc, 4),
            "network_seconds": round(net, 4),
            "encode_share": round(enc / (enc + net), 4),
            "pandas_encode_seconds": round(pandas_enc, 4),
            "pandas_encode_share": round(pandas_enc / (pandas_enc + net), 4),
            "encode_share_target_met": enc / (enc + net) <= ENCODE_SHARE_TARGET,
        }
    return out


def profile_encoding(scorer: Any, rows: Any, top: int = 15) -> list[dict[str, Any]]:
    """The functions where the batch encoding of ``rows`` spends its time (cProfile)."""
    profiler = cProfile.Profile()
    profiler.enable()
    scorer.encoder.encode(rows)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    entries = []
    for (path, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append(
            {
                "function": f"{Path(path).name}:{line}({func})",
                "calls": calls,
                "own_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
            }
        )
    entries.sort(key=lambda e: e["own_s"], reverse=True)
    return entries[:top]


# -- the whole benchmark -------------------------------------------------------------
def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import torch

    from bench.machine import machine_info
    from din_model.data.adapters import ingest
    from din_model.pipeline.prepare import raw_samples
    from din_model.serving.ranking import supports_key_projection
    from din_model.serving.raw_scorer import RawScorer

    torch.set_num_threads(args.threads)
    machine = machine_info(args.threads)
    setup = setup_run(args, work)
    run_dir: Path = setup["run"]
    checkpoint, serving = run_dir / "checkpoints" / "best.pt", run_dir / "serving"
    torch_scorer = RawScorer.from_checkpoint(checkpoint, serving, "torch", num_threads=args.threads)
    onnx_scorer = RawScorer.from_checkpoint(checkpoint, serving, "onnx", num_threads=args.threads)
    torch.set_num_threads(args.threads)
    scorers = {"torch": torch_scorer, "onnx": onnx_scorer}
    latency_scorers = {"torch": torch_scorer, "onnx": onnx_scorer}
    if supports_key_projection(torch_scorer.network.model):
        latency_scorers = {
            "torch": torch_scorer,
            "torch+key_projection": torch_scorer,
            "onnx": onnx_scorer,
        }

    user, candidates = ranking_request(serving, args.history, args.candidates, args.seed)
    with OtherLoad() as latency_load:
        latency = measure_latency(
            latency_scorers, user, candidates, args.calls, args.warmup, max(1, args.rounds)
        )
    key_projection: dict[str, Any] = {"applies": "torch+key_projection" in latency}
    if key_projection["applies"]:
        plain, fast = latency["torch"], latency["torch+key_projection"]
        key_projection.update(
            network_p50_speedup=round(plain["network"]["p50_ms"] / fast["network"]["p50_ms"], 3),
            p50_speedup=round(plain["p50_ms"] / fast["p50_ms"], 3),
            p99_speedup=round(plain["p99_ms"] / fast["p99_ms"], 3),
            max_abs_diff=fast["max_abs_diff_vs_torch"],
        )

    data = ingest("amazon", setup["raw"])
    rows = raw_samples(data, seed=args.seed, split="train").drop("label").head(args.rows)
    with OtherLoad() as throughput_load:
        throughput = measure_throughput(scorers, rows, args.repeat)
    result: dict[str, Any] = {
        "benchmark": "serving",
        "machine": machine,
        "load_avg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "other_load": {"latency": latency_load.result, "throughput": throughput_load.result},
        "setup": {
            **setup["info"],
            "threads": args.threads,
            "history": args.history,
            "candidates": args.candidates,
            "calls": args.calls,
            "warmup": args.warmup,
            "throughput_rows": rows.height,
            "mean_history_of_rows": round(float(rows["history_item_id"].list.len().mean()), 3),
        },
        "targets": {"p99_ms": P99_TARGET_MS, "encode_share": ENCODE_SHARE_TARGET},
        "latency": latency,
        "key_projection": key_projection,
        "throughput": throughput,
    }
    if args.profile_encoding or any(not t["encode_share_target_met"] for t in throughput.values()):
        result["encode_profile"] = profile_encoding(torch_scorer, rows)
    return result


def print_table(result: dict[str, Any]) -> None:
    setup = result["setup"]
    print(
        f"ranking: 1 user x {setup['candidates']} candidates, history {setup['history']}, "
        f"{setup['threads']} threads, {setup['calls']} calls "
        f"({setup['model']}, {setup['preset']} preset)"
    )
    print(f"{'variant':<22} {'p50 ms':>8} {'p99 ms':>8} {'enc p50':>8} {'net p50':>8} "
          f"{'net p99':>8}")  # fmt: skip
    for name, entry in result["latency"].items():
        print(
            f"{name:<22} {entry['p50_ms']:>8.2f} {entry['p99_ms']:>8.2f} "
            f"{entry['encode']['p50_ms']:>8.2f} {entry['network']['p50_ms']:>8.2f} "
            f"{entry['network']['p99_ms']:>8.2f}"
        )
    load = (result.get("other_load") or {}).get("latency")
    if load:
        print(
            f"(other processes used {load['others_cores']:.2f} cores during the latency "
            f"calls, steal {load['steal_cores']:.2f})"
        )
    print(f"batch scoring: {setup['throughput_rows']:,} raw rows")
    print(f"{'runtime':<22} {'score r/s':>10} {'net r/s':>10} {'enc share':>10} {'pd share':>10}")
    for name, entry in result["throughput"].items():
        print(
            f"{name:<22} {entry['score_rows_per_s']:>10,.0f} {entry['network_rows_per_s']:>10,.0f} "
            f"{entry['encode_share']:>10.2f} {entry['pandas_encode_share']:>10.2f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
