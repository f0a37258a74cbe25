"""The ``din`` console script: din_model's commands plus the pipeline's.

Pipeline commands (``run``, ``serve``, ``ui``, ``rerun``) live in
:mod:`flows.commands` and import Prefect and MLflow only when they run, so
``din prepare`` and ``din train`` start fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from din_model.cli._main import run

COMMAND_PACKAGES = ("din_model.cli", "flows.commands", "bench.commands")
# Prefect's engine logs a failed flow's or task's exception with its traceback
ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs")


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv, COMMAND_PACKAGES, ENGINE_LOGGERS)


if __name__ == "__main__":
    sys.exit(main())
