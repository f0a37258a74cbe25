"""The trainer of one rank in data-parallel training (DistributedDataParallel).

:class:`DistributedTrainer` is the single-process :class:`Trainer` with four
changes, each a hook of the base class:

* the forward pass goes through ``DistributedDataParallel`` (gradients are
  all-reduced during backward, weighted by the rank's share of the global
  batch: :mod:`din_model.distributed.sharding`);
* the epoch's batches are this rank's parts of the global batches;
* each epoch starts from a torch seed of (seed, epoch, rank), so dropout
  differs between ranks and a resumed run draws exactly what an uninterrupted
  one would have (only rank 0's generator state is in the checkpoint);
* validation scores a shard of rows per rank and gathers the scores; the
  epoch's loss and speed are combined over the ranks.

Dice and BatchNorm use the batch statistics of the rank's own part (as
``BatchNorm`` does under DDP without ``SyncBatchNorm``); their moving averages
are taken from rank 0 at every forward (DDP's ``forward_sync_buffers``) and after
each epoch, so every rank validates and rank 0 checkpoints the same model.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from din_model.distributed import group as distributed
from din_model.distributed.sharding import GlobalBatchPenalty, ShardedBatches, weighted_allreduce
from din_model.errors import ConfigError
from din_model.regularizers import Regularizer
from din_model.tensors.split import SplitTensors
from din_model.training.acceleration import compile_model
from din_model.training.trainer import Trainer

logger = logging.getLogger(__name__)


def rank_epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The torch seed of one rank's epoch (dropout masks and other in-model randomness)."""
    return (seed * 1_000_003 + epoch) * 1_009 + rank + 1


class DistributedTrainer(Trainer):
    """A :class:`Trainer` for one rank of a torch.distributed process group."""

    def __init__(
        self,
        model: nn.Module,
        regularizer: Regularizer,
        optimizer: torch.optim.Optimizer,
        train_config: dict[str, Any],
        device: torch.device,
    ) -> None:
        super().__init__(model, regularizer, optimizer, train_config, device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        if self.batch_size < self.world:
            raise ConfigError(
                f"train.batch_size={self.batch_size} is the global batch and must be at least "
                f"the number of processes ({self.world})"
            )
        self.shards = ShardedBatches(self.rank, self.world, packed_rows=device.type == "cuda")
        ddp = DistributedDataParallel(
            model,
            # None: batches are already on this rank's device, and DDP would otherwise
            # also move the CPU scalar of packed positions (a GPU read-back per batch)
            device_ids=None,
            forward_sync_buffers=True,  # rank 0's moving averages before every forward
        )
        ddp.register_comm_hook(self.shards.weights, weighted_allreduce)
        # torch.compile goes around DDP (its DDPOptimizer splits graphs at the buckets)
        self.forward_module = compile_model(ddp, train_config)
        if self.graphs is not None:
            logger.warning(
                "train.cuda_graphs is not used in data-parallel training: the gradient "
                "all-reduce runs inside the backward pass that a graph would record"
            )
            self.graphs = None
        self.regularizer = GlobalBatchPenalty(regularizer, self.shards)
        if not distributed.is_main_process():
            self.progress = "none"
        per_rank = sorted(
            {stop - start for start, stop in distributed.shard_bounds(self.batch_size, self.world)}
        )
        logger.info(
            "data-parallel over %d processes: global batch %d = %s rows per rank",
            self.world,
            self.batch_size,
            " or ".join(str(size) for size in per_rank),
        )

    def epoch_batches(self, split: SplitTensors, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        return self.shards.iterate(
            split,
            self.batch_size,
            shuffle=bool(self.config.get("shuffle", True)),
            seed=self.seed,
            epoch=epoch,
            trim=bool(self.config.get("trim_padding", True)),
            device=self.device,
        )

    def train_epoch(self, split: SplitTensors, epoch: int, epochs: int) -> dict[str, float]:
        torch.manual_seed(rank_epoch_seed(self.seed, epoch, self.rank))
        stats = super().train_epoch(split, epoch, epochs)
        distributed.broadcast_buffers(self.model)
        samples = self.shards.epoch.samples if self.shards.epoch is not None else 0
        return combine_epoch_stats(distributed.all_gather_objects((samples, stats)))

    def validate(self, split: SplitTensors) -> dict[str, Any]:
        metrics, _ = distributed.score_split_sharded(
            self.model,
            split,
            self.eval_batch_size,
            device=self.device,
            transform=lambda batch: self.regularizer.transform_batch(batch, training=False),
            amp=self.amp,
        )
        return metrics


def combine_epoch_stats(per_rank: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """One epoch record from every rank's (samples, stats).

    Losses are averaged weighted by the rows each rank trained on; the epoch
    took as long as the slowest rank, and the speed counts every rank's rows.
    Keys this function does not know are taken from rank 0.
    """
    total = sum(samples for samples, _ in per_rank)
    combined = dict(per_rank[0][1])
    for key in ("train_loss", "train_penalty"):
        if key in combined:
            combined[key] = sum(s[key] * n for n, s in per_rank) / max(total, 1)
    if "train_seconds" in combined:
        seconds = max(s["train_seconds"] for _, s in per_rank)
        combined["train_seconds"] = seconds
        combined["samples_per_s"] = total / max(seconds, 1e-9)
    return combined


def make_trainer(
    model: nn.Module,
    regularizer: Regularizer,
    optimizer: torch.optim.Optimizer,
    train_config: dict[str, Any],
    device: torch.device,
) -> Trainer:
    """The trainer for this process: data-parallel inside a process group, else the plain one."""
    trainer_class = DistributedTrainer if distributed.is_distributed() else Trainer
    return trainer_class(model, regularizer, optimizer, train_config, device)
