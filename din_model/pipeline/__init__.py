"""The composed stages, the one path every command takes.

``prepare``: raw -> validated samples; ``fit_and_score``: samples -> model -> metrics.
See the README's layout table.
"""

from typing import Any

# Resolved on first use (PEP 562): ``din prepare`` imports ``pipeline.prepare`` and must not
# pay for torch, which ``run`` and ``serving`` import.
_EXPORTS = {
    "FitResult": "din_model.pipeline.run",
    "TrainResult": "din_model.pipeline.run",
    "evaluate_checkpoint": "din_model.pipeline.run",
    "fit": "din_model.pipeline.run",
    "fit_and_score": "din_model.pipeline.run",
    "load_trained_model": "din_model.serving.loading",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = sorted(_EXPORTS)
