"""Page faults of a large CPU block freed and allocated again, with and without
``train.reuse_cpu_memory``.

Run: ``.venv/bin/python -m bench.cpu_memory [--rounds N] [--megabytes M]``.

Why a benchmark and not a test: whether glibc hands the *same* pages back
depends on the state of the heap (what else was freed, which arena a thread
uses), so a page-fault count is a measurement that can vary from run to run.
The test suite checks the deterministic part instead (large blocks no longer
come from ``mmap``: ``tests/training/test_cpu_memory.py``); this script shows
the effect that setting has, in a fresh interpreter per setting so that no
earlier work shapes the heap.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

PROBE = """
import json, resource, sys, torch
from din_model.training.cpu_memory import reuse_cpu_memory

floats = int(sys.argv[1]) * 2**20 // 4
if sys.argv[2] == "reuse":
    assert reuse_cpu_memory()

def page_faults_of_one_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(floats)
    block.fill_(1.0)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

print(json.dumps([page_faults_of_one_block() for _ in range(int(sys.argv[3]))]))
"""
SETTINGS = ("default", "reuse")


def page_faults(setting: str, megabytes: int, rounds: int) -> list[int]:
    """Minor page faults of each of ``rounds`` allocate-fill-free cycles in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(megabytes), setting, str(rounds)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="allocations per process")
    parser.add_argument("--megabytes", type=int, default=64, help="size of the block")
    args = parser.parse_args(argv)
    fresh = args.megabytes * 2**20 // 4096
    print(f"{args.megabytes} MB block = {fresh:,} pages; minor page faults per allocation:")
    for setting in SETTINGS:
        faults = page_faults(setting, args.megabytes, args.rounds)
        refaulted = sum(f >= fresh // 2 for f in faults[1:])
        print(
            f"  {setting:>7}: {' '.join(str(f) for f in faults)}"
            f"  ({refaulted} of {len(faults) - 1} repeats faulted the block in again)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
