"""The process group of data-parallel training, and the collectives the trainer needs.

``din train`` started by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``) joins a process group in
:func:`process_group`: gloo when training on the CPU, nccl on GPUs (one GPU per
process, ``cuda:LOCAL_RANK``). Without those variables, or with one process,
nothing here does anything and training is the single-process path.

Every rank loads the whole prepared data and builds the same seeded model; the
training samples are sharded per epoch (:mod:`din_model.distributed.sharding`),
validation and test are scored in contiguous row shards whose scores, labels
and user keys are gathered so that AUC/GAUC/LogLoss are computed once, on rank
0, and sent to the others (:func:`score_split_sharded`). Only rank 0 writes
files; the others wait at a barrier where they would read them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from din_model.errors import ConfigError
from din_model.metrics import evaluate_scores
from din_model.tensors.split import SplitTensors
from din_model.training.device import resolve_device
from din_model.training.evaluate import BatchTransform, predict, score_split

logger = logging.getLogger(__name__)

#: How long a rank waits for the others at a collective before failing (not forever).
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class ProcessGroupInfo:
    """This process's place in the group."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r}: expected an integer") from None


def launched_distributed() -> bool:
    """True when a launcher (torchrun) started this process as one of several."""
    world = _env_int("WORLD_SIZE")
    return world is not None and world > 1


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """Rank 0, or the only process: the one that logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op outside a process group)."""
    if is_distributed():
        dist.barrier()


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def local_rank() -> int:
    return _env_int("LOCAL_RANK") or 0


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a GPU run under DDP, else ``device``."""
    if is_distributed() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def _comm_device() -> torch.device:
    """Where collective tensors must live: the rank's GPU for nccl, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def process_group(device_setting: str | None = "auto") -> Iterator[ProcessGroupInfo | None]:
    """Join the torchrun process group for the duration of a command.

    Yields None (and does nothing) when the process was not launched as one of
    several, or when a group already exists (the caller owns it). Otherwise it
    initialises the group with the backend of ``device_setting`` (train.device),
    quiets the log of every rank but 0 to warnings, and destroys the group on
    exit.
    """
    if not launched_distributed() or (dist.is_available() and dist.is_initialized()):
        yield None
        return
    if not dist.is_available():
        raise ConfigError(f"torch {torch.__version__} was built without torch.distributed")
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise ConfigError(
                f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {name} is not set: start "
                "distributed training with torchrun (see the README)"
            )
    device = resolve_device(device_setting)
    backend = backend_for(device)
    if device.type == "cuda":
        if local_rank() >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank()} but this machine has {torch.cuda.device_count()} "
                "GPUs: start at most one process per GPU (--nproc-per-node)"
            )
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    info = ProcessGroupInfo(dist.get_rank(), dist.get_world_size(), local_rank(), backend)
    root = logging.getLogger()
    level = root.level
    if info.rank != 0:
        root.setLevel(logging.WARNING)
    logger.info(
        "joined a process group of %d processes (backend %s); rank 0 logs and writes",
        info.world_size,
        backend,
    )
    try:
        yield info
    finally:
        root.setLevel(level)
        dist.destroy_process_group()


def describe() -> dict[str, Any] | None:
    """What metrics.json records about the group, or None for one process."""
    if not is_distributed():
        return None
    return {"world_size": world_size(), "backend": dist.get_backend()}


# -- collectives -----------------------------------------------------------------------
def shard_bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous near-equal [start, stop) ranges of ``n`` rows, the first ``n % parts`` longer.

    The same split as ``torch.tensor_split``; computable on every rank without
    communication, so gathers know each rank's size in advance.
    """
    base, extra = divmod(n, parts)
    bounds, start = [], 0
    for part in range(parts):
        stop = start + base + (1 if part < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def all_gather_rows(local: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Concatenate every rank's 1-D ``local`` (rank order); ranks may hold different sizes.

    ``all_gather`` needs equal shapes, so each rank pads to the largest size and
    the padding is cut off again after the exchange.
    """
    device = _comm_device()
    longest = max(sizes)
    padded = torch.zeros(longest, dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)]).cpu()


def broadcast_object(value: Any, src: int = 0) -> Any:
    """``value`` of rank ``src`` on every rank (small picklable objects: metrics dicts)."""
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_objects(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def same_on_every_rank(value: Any) -> bool:
    """Whether every rank passed an equal ``value`` (always True for one process)."""
    if not is_distributed():
        return True
    values = all_gather_objects(value)
    return all(other == values[0] for other in values)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (Dice and BatchNorm moving averages) to every rank.

    Batch statistics are per rank (a rank normalises with its own shard of the
    batch, like BatchNorm without sync), so after an epoch each rank's moving
    averages differ slightly; rank 0's are the ones its checkpoint saves, and
    every rank must score with the same model.
    """
    for buffer in module.buffers():
        dist.broadcast(buffer, src=src)


# -- scoring -------------------------------------------------------------------------
def score_split_sharded(
    model: nn.Module,
    split: SplitTensors,
    batch_size: int,
    *,
    device: torch.device | None = None,
    transform: BatchTransform | None = None,
    amp: torch.dtype | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, scores) of ``split`` with each rank scoring one contiguous shard of rows.

    Scores, labels and user keys are gathered from every rank (shards differ
    by at most one row), the metrics are computed once on rank 0 and
    broadcast, so every rank takes the same early-stopping decision. The
    returned scores are the whole split's, in row order, on every rank.
    """
    sizes = [stop - start for start, stop in shard_bounds(len(split), world_size())]
    start, stop = shard_bounds(len(split), world_size())[rank()]
    shard = split.rows(start, stop)
    local = predict(model, shard, batch_size, device=device, transform=transform, amp=amp)
    scores = all_gather_rows(torch.from_numpy(local), sizes).numpy()
    labels = all_gather_rows(shard.label, sizes).numpy()
    users = all_gather_rows(shard.user, sizes).numpy()
    metrics = evaluate_scores(labels, scores, users) if is_main_process() else None
    return broadcast_object(metrics), scores


def score(
    model: nn.Module,
    split: SplitTensors,
    batch_size: int,
    *,
    device: torch.device | None = None,
    transform: BatchTransform | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """:func:`score_split`, sharded over the ranks inside a process group."""
    scorer = score_split_sharded if is_distributed() else score_split
    return scorer(model, split, batch_size, device=device, transform=transform)
