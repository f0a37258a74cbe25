"""One rank of the resume test, started by ``torchrun`` (tests/training/test_distributed.py).

Every rank trains a reference run, then a run interrupted after its first
epoch (an exception raised on every rank by the epoch callback, after
``last.pt`` is written, like a crash) that is started again and resumes.
Rank 0 writes what the test compares to ``OUT/summary.json``.

usage: torchrun --standalone --nproc-per-node 2 _ddp_worker.py DATA OUT CONFIG_JSON
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from din_model.distributed.group import is_main_process, process_group, world_size
from din_model.pipeline import fit, fit_and_score


class Interrupted(Exception):
    pass


def stop_after_first_epoch(record: dict) -> None:
    if record["epoch"] == 1:
        raise Interrupted


def main() -> None:
    data, out, config = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
    with process_group("cpu") as group:
        assert group is not None and world_size() == 2
        reference = fit_and_score(data, out / "reference", "din", "mba", config)
        with contextlib.suppress(Interrupted):
            fit(data, out / "resumed", "din", "mba", config, on_epoch_end=stop_after_first_epoch)
        resumed = fit_and_score(data, out / "resumed", "din", "mba", config)
        if is_main_process():
            summary = {
                "reference": reference.metrics,
                "resumed": resumed.metrics,
                "resumed_from_epoch": resumed.fit.resumed_from_epoch,
            }
            (out / "summary.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
