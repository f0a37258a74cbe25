"""The epoch loop: BCE with logits plus the regulariser's penalty, validation, early stopping.

One training step is: cut a batch by index, let the regulariser transform it,
forward, ``binary_cross_entropy_with_logits`` (mean over the batch) plus the
regulariser's penalty, backward, optional gradient clipping, optimizer step.
The loss is accumulated on the device and read once per epoch (or every few
batches when a progress bar shows it), so the loop does not synchronise on
every batch.

Optional speed-ups (``train.amp``, ``train.compile``, ``train.cuda_graphs``,
``train.tf32``; :mod:`din_model.training.acceleration`) wrap the forward
pass and leave the step as described; all are off by default.

Model selection follows the paper's protocol without looking at test: the
epoch with the best validation metric (GAUC by default) is kept, and
training stops after ``early_stopping_patience`` epochs without improvement.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from din_model.errors import ConfigError
from din_model.regularizers import Regularizer
from din_model.tensors.batches import batch_count, iterate_batches, max_batch_positions
from din_model.tensors.split import SplitTensors
from din_model.training.acceleration import (
    GraphedForward,
    amp_dtype,
    autocast,
    compile_model,
    configure_matmul,
    wants_cuda_graphs,
)
from din_model.training.evaluate import score_split

logger = logging.getLogger(__name__)

MONITORS = {"gauc": "max", "auc": "max", "logloss": "min"}
PROGRESS_MODES = ("auto", "bar", "log", "none")


@dataclass
class TrainingState:
    """What early stopping and resumption need to know between epochs."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_value: float | None = None
    best_metrics: dict[str, Any] | None = None
    epochs_without_improvement: int = 0
    completed: bool = False
    stopped_early: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TrainingState:
        return cls(**payload)


def is_improvement(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    if math.isnan(value):
        return False
    if math.isnan(best):
        return True
    return value > best if MONITORS[monitor] == "max" else value < best


def progress_mode(setting: str | None) -> str:
    mode = str(setting or "auto").lower()
    if mode not in PROGRESS_MODES:
        raise ConfigError(
            f"train.progress: unknown '{mode}'; choose one of {', '.join(PROGRESS_MODES)}"
        )
    if mode == "auto":
        return "bar" if sys.stderr.isatty() else "log"
    return mode


class Trainer:
    """Runs training epochs and validation passes of one model."""

    def __init__(
        self,
        model: nn.Module,
        regularizer: Regularizer,
        optimizer: torch.optim.Optimizer,
        train_config: dict[str, Any],
        device: torch.device,
    ) -> None:
        self.model = model
        self.regularizer = regularizer
        self.optimizer = optimizer
        self.config = train_config
        self.device = device
        self.batch_size = int(train_config["batch_size"])
        self.eval_batch_size = int(train_config["eval_batch_size"])
        self.seed = int(train_config["seed"])
        clip = train_config.get("grad_clip_norm")
        self.grad_clip = float(clip) if clip is not None else None
        self.progress = progress_mode(train_config.get("progress"))
        # What the training forward pass calls: the model itself, or its
        # DistributedDataParallel wrapper (din_model.distributed.trainer).
        self.forward_module: nn.Module = model
        # Optional speed-ups (din_model.training.acceleration), all off by default.
        self.amp = amp_dtype(train_config.get("amp"))
        configure_matmul(train_config, device)
        self.forward_module = compile_model(model, train_config)
        self.graphs = (
            GraphedForward(self.forward_module, self.amp, device)
            if wants_cuda_graphs(train_config, device)
            else None
        )
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("train.batch_size and train.eval_batch_size must be >= 1")

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train_epoch(self, split: SplitTensors, epoch: int, epochs: int) -> dict[str, float]:
        """One pass over ``split`` in the (seed, epoch) order; returns loss and speed."""
        self.model.train()
        n_batches = batch_count(len(split), self.batch_size)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        penalty_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        bar = tqdm(
            total=n_batches,
            desc=f"epoch {epoch}/{epochs}",
            unit="batch",
            leave=False,
            file=sys.stderr,
            disable=self.progress != "bar",
        )
        log_points = {max(1, round(n_batches * q / 4)) for q in (1, 2, 3)}
        seen = steps = 0
        self._sync()
        start = time.perf_counter()
        if self.graphs is not None:
            shuffle = bool(self.config.get("shuffle", True))
            self.graphs.prepare_epoch(
                max_batch_positions(
                    split.lengths, self.batch_size, shuffle=shuffle, seed=self.seed, epoch=epoch
                )
            )
        batches = self.epoch_batches(split, epoch)
        for number, batch in enumerate(batches, start=1):
            batch = self.regularizer.transform_batch(batch, training=True)
            with autocast(self.device, self.amp):
                logits = self._forward(batch)
                loss = F.binary_cross_entropy_with_logits(logits, batch["label"])
            penalty = self.regularizer.penalty(self.model, batch)
            objective = loss if penalty is None else loss + penalty
            self.optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if self.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            steps += 1

            size = batch["label"].shape[0]
            seen += size
            loss_sum += loss.detach().double() * size
            if penalty is not None:
                penalty_sum += penalty.detach().double() * size
            if self.progress == "bar":
                bar.update()
                if number % 20 == 0 or number == n_batches:
                    bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}")
            elif self.progress == "log" and number in log_points and number < n_batches:
                rate = seen / max(time.perf_counter() - start, 1e-9)
                logger.info(
                    "epoch %d/%d: batch %d/%d, loss %.4f, %.0f samples/s",
                    epoch,
                    epochs,
                    number,
                    n_batches,
                    loss_sum.item() / seen,
                    rate,
                )
        self._sync()
        seconds = time.perf_counter() - start
        bar.close()
        train_loss = loss_sum.item() / max(seen, 1)
        if not math.isfinite(train_loss):
            raise ConfigError(
                f"training diverged at epoch {epoch}: the loss is {train_loss}; "
                "lower train.learning_rate or set train.grad_clip_norm"
            )
        return {
            "train_loss": train_loss,
            "train_penalty": penalty_sum.item() / max(seen, 1),
            "train_seconds": seconds,
            "samples_per_s": seen / max(seconds, 1e-9),
            # optimizer steps: what train.batch_size_rule: auto sizes (batch_rule.py)
            "train_steps": steps,
        }

    def _forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training forward pass: replayed from a CUDA graph when that is on.

        A graph records the model itself: a wrapper set later (DistributedDataParallel,
        whose backward hooks all-reduce the gradients) always runs eagerly.
        """
        if self.graphs is None or self.forward_module is not self.graphs.model:
            return self.forward_module(batch)
        full = batch["label"].shape[0] == self.batch_size
        return self.graphs(self.forward_module, batch, full)

    def epoch_batches(self, split: SplitTensors, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """The training batches of one epoch (a data-parallel rank takes its shards)."""
        return iterate_batches(
            split,
            self.batch_size,
            shuffle=bool(self.config.get("shuffle", True)),
            seed=self.seed,
            epoch=epoch,
            # CUDA graphs replay fixed shapes: every batch keeps the split's width.
            trim=bool(self.config.get("trim_padding", True)) and self.graphs is None,
            device=self.device,
            # On a GPU, DIN learns its packed size from the batch instead of the device.
            packed_rows=self.device.type == "cuda",
        )

    def validate(self, split: SplitTensors) -> dict[str, Any]:
        """AUC, GAUC (+ users), LogLoss of ``split`` with the current weights."""
        metrics, _ = score_split(
            self.model,
            split,
            self.eval_batch_size,
            device=self.device,
            transform=lambda batch: self.regularizer.transform_batch(batch, training=False),
            amp=self.amp,
        )
        return metrics
