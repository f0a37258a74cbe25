"""Checkpoints: written atomically every epoch, read back without unpickling code.

Two files live in ``<out>/checkpoints/``:

``last.pt``
    the full training state after the latest finished epoch (model,
    optimizer, scheduler, RNG states, epoch, best-so-far, history, config
    hash, data fingerprint). A killed run restarts from it and, because the
    batch order depends only on (seed, epoch) and every generator state is
    restored, reaches the same final metrics as an uninterrupted run.
``best.pt``
    the model of the epoch with the best validation metric, with what is
    needed to rebuild and score it (model name, config, feature map,
    regulariser state). The test split is scored from this file only.

Files are written to a temporary sibling and renamed, so a kill during the
write leaves the previous complete file. Checkpoints hold only tensors and
plain Python values and are loaded with ``weights_only=True``: loading a
checkpoint never executes code from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from din_model.errors import DataError
from din_model.io.atomic import atomic_output_file

FORMAT = "din-checkpoint/1"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"


def checkpoint_paths(out_dir: str | Path) -> tuple[Path, Path]:
    """(last, best) checkpoint paths of a training output directory."""
    directory = Path(out_dir) / CHECKPOINT_DIR
    return directory / LAST, directory / BEST


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format tag) atomically."""
    with atomic_output_file(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint onto the CPU; a missing or foreign file is a DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "a checkpoint written by `din train`", got="no such file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise DataError(path, "a checkpoint written by `din train`", got=str(exc)) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataError(path, f"a checkpoint in format {FORMAT}", got=str(got))
    return payload
