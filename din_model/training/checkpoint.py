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
write leaves the previous complete file, and so does a full disk, which is
reported as such (:func:`save_checkpoint`). Checkpoints hold only tensors and
plain Python values and are loaded with ``weights_only=True``: loading a
checkpoint never executes code from it.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch

from din_model.errors import DataError, DinError, WriteFailed
from din_model.io.atomic import atomic_output_file
from din_model.io.failures import REASONS, write_failure

FORMAT = "din-checkpoint/1"
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
# how torch's C++ writer words a failed write (it never gives the errno)
_TORCH_WRITE_ERRORS = ("unexpected pos", "failed writing", "file write failed", "iostream error")
_SLACK = 1 << 20  # a failed write with less than this left beyond the tensors: a full disk


def checkpoint_paths(out_dir: str | Path) -> tuple[Path, Path]:
    """(last, best) checkpoint paths of a training output directory."""
    directory = Path(out_dir) / CHECKPOINT_DIR
    return directory / LAST, directory / BEST


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (plus the format tag) atomically; a failed write is a WriteFailed.

    Why through a Python file object: given a path, torch's C++ writer reports
    a full disk as "unexpected pos N vs M" and nothing else. Given a Python
    file, the failing ``write`` raises ``OSError(ENOSPC)`` (or EACCES, EDQUOT,
    ...), which torch chains as the context of its RuntimeError, so the real
    reason is known (:func:`din_model.io.failures.io_errno`). Should a torch
    version lose that chain, a write failure while the disk has less free
    space than the checkpoint's tensors (plus 1 MiB) is reported as a full
    disk, and any other as torch's own words, still one line naming the file. Either
    way the previous checkpoint stays (the write went to a temporary file).
    """
    path = Path(path)
    try:
        with atomic_output_file(path) as tmp, tmp.open("wb") as handle:
            torch.save({"format": FORMAT, **payload}, handle)
    except DinError:
        raise
    except (OSError, RuntimeError) as exc:
        failure = _write_failure(exc, path, payload)
        if failure is None:
            raise
        raise failure from exc


def _write_failure(exc: BaseException, path: Path, payload: Any) -> WriteFailed | None:
    """The user-fixable reason ``exc`` failed writing ``path``, or None (a bug: re-raise)."""
    known = write_failure(exc, path)
    if known is not None:
        return WriteFailed(path, known.reason)  # name the checkpoint, not its temporary file
    text = str(exc).lower()
    if not isinstance(exc, RuntimeError) or not any(s in text for s in _TORCH_WRITE_ERRORS):
        return None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        free = None
    if free is not None and free < _tensor_bytes(payload) + _SLACK:
        return WriteFailed(path, REASONS[errno.ENOSPC])
    return WriteFailed(path, f"torch could not write the file ({str(exc).splitlines()[0]})")


def _tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in a (nested) checkpoint payload: what the file needs at least."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


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
