"""Time GAUC on 1M rows and 100k users (issue target: under 1 s).

Run: ``.venv/bin/python -m bench.gauc_speed [--rows N] [--users U] [--repeat R]``.
Prints the best and median wall time over the repeats and the value, so a
regression in the vectorised implementation shows up as a number, not a
flaky test.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from din_model.metrics import gauc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    users = rng.integers(1, args.users + 1, args.rows, dtype=np.int64)
    labels = rng.integers(0, 2, args.rows, dtype=np.int8)
    # Rounded scores create the ties a real model's float32 outputs have.
    scores = np.round(rng.random(args.rows) + 0.2 * labels, 4)

    timings = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        value, n_users = gauc(labels, scores, users)
        timings.append(time.perf_counter() - start)
    print(
        f"gauc rows={args.rows:,} users={args.users:,}: best {min(timings):.3f} s, "
        f"median {statistics.median(timings):.3f} s over {args.repeat} runs "
        f"(value {value:.4f}, {n_users:,} users counted)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
