"""Optional speed-ups of the training step: bf16 autocast, torch.compile, CUDA graphs.

All are off by default (``train.amp: none``, ``train.compile: false``,
``train.cuda_graphs: false``); each trades something for speed:

* ``amp: bf16`` runs the matrix products and the activations in bfloat16
  (losses, optimizer state and parameters stay float32). About three
  significant digits in the activations; the metrics move in the third decimal.
* ``compile: true`` hands the model to ``torch.compile`` (TorchInductor fuses the
  element-wise work, e.g. Dice's statistics, into a few kernels). It costs a
  compilation (tens of seconds) at the first batches and whenever shapes change.
* ``cuda_graphs: true`` (GPU only) records the forward and backward pass of a full
  batch once and replays it: one launch instead of hundreds of kernel launches,
  which is what limits DIN on a GPU (about 6 ms of launches per batch against well
  under 1 ms of GPU work at batch 4096). A graph needs fixed shapes, so the
  history width is not trimmed per batch and DIN packs the valid positions to a
  fixed capacity (the most any batch of the epoch holds, known from the lengths
  before the epoch starts, plus a margin). The last, smaller batch of an epoch runs
  without the graph. The optimizer step stays outside the graph (it is a few fused
  kernels).

With ``tf32: true`` float32 matrix products on a GPU use TensorFloat-32.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from din_model.errors import ConfigError

logger = logging.getLogger(__name__)

AMP_MODES = ("none", "bf16")
# Capacity headroom over the epoch's fullest batch, so that the next epochs (another
# permutation, a slightly fuller batch) usually reuse the graph instead of recording anew.
CAPACITY_MARGIN = 1.05
CAPACITY_QUANTUM = 512


def amp_dtype(setting: Any) -> torch.dtype | None:
    """``train.amp`` -> the autocast dtype, or None for full float32."""
    mode = "none" if setting in (None, False) else str(setting).lower()
    if mode not in AMP_MODES:
        raise ConfigError(f"train.amp: unknown '{setting}'; choose one of {', '.join(AMP_MODES)}")
    return torch.bfloat16 if mode == "bf16" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` (no weight-cast cache: CUDA graphs require that), or nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


def configure_matmul(train: Mapping[str, Any], device: torch.device) -> None:
    """TensorFloat-32 matrix products on a GPU when ``train.tf32`` asks for them."""
    if device.type == "cuda" and bool(train.get("tf32", False)):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def compile_model(model: nn.Module, train: Mapping[str, Any]) -> nn.Module:
    """``torch.compile(model)`` when ``train.compile`` is on, else the model itself."""
    if not bool(train.get("compile", False)):
        return model
    logger.info("compiling the model with torch.compile (the first batches take longer)")
    return torch.compile(model, dynamic=None)


def wants_cuda_graphs(train: Mapping[str, Any], device: torch.device) -> bool:
    setting = train.get("cuda_graphs", False)
    if not isinstance(setting, bool):
        raise ConfigError(f"train.cuda_graphs: expected true or false, got {setting!r}")
    if setting and device.type != "cuda":
        logger.warning("train.cuda_graphs needs a CUDA device; training on %s without", device)
        return False
    return setting


def packed_capacity(positions: int) -> int:
    """Fixed packed size for an epoch whose fullest batch has ``positions`` valid cells."""
    wanted = max(1, int(positions * CAPACITY_MARGIN))
    return -(-wanted // CAPACITY_QUANTUM) * CAPACITY_QUANTUM


class _TensorForward(nn.Module):
    """``model`` called with the batch's tensors in a fixed order (what a graph records)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: Tensor) -> Tensor:
        return self.model(dict(zip(self.names, tensors, strict=True)))


class GraphedForward:
    """The training forward (and its backward) of full batches as a replayed CUDA graph.

    :meth:`__call__` replays the graph for batches of the recorded shape and
    falls back to ``module(batch)`` for any other batch. :meth:`prepare_epoch`
    gives the epoch's packed capacity; a larger one than recorded drops the
    graph, and the next full batch records a new one. A failed recording (an
    operation that synchronises, an unsupported kernel) is logged and training
    goes on without graphs.
    """

    def __init__(self, model: nn.Module, amp: torch.dtype | None, device: torch.device) -> None:
        self.model = model
        self.amp = amp
        self.device = device
        self.capacity: int | None = None
        self.graphed: nn.Module | None = None
        self.names: list[str] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.failed = False

    def prepare_epoch(self, positions: int) -> None:
        if self.capacity is None or positions > self.capacity:
            if self.graphed is not None:
                logger.info("epoch needs %d packed rows: recording a new CUDA graph", positions)
            self.capacity = packed_capacity(positions)
            self.graphed = None

    def _inputs(self, batch: Mapping[str, Tensor]) -> list[str]:
        """The model's inputs among the batch's keys (labels and user keys stay outside)."""
        features = set(getattr(self.model, "sparse_names", [])) | set(
            getattr(self.model, "sequence_names", [])
        )
        return [name for name in batch if name in features]

    def _matches(self, batch: Mapping[str, Tensor]) -> bool:
        return self._inputs(batch) == self.names and all(
            tuple(batch[n].shape) == shape for n, shape in self.shapes.items()
        )

    def __call__(self, module: nn.Module, batch: Mapping[str, Tensor], full: bool) -> Tensor:
        if self.failed or not full:
            return module(batch)
        if self.graphed is None:
            self._record(batch)
            if self.graphed is None:
                return module(batch)
        if not self._matches(batch):
            return module(batch)
        return self.graphed(*(batch[name] for name in self.names))

    def _record(self, batch: Mapping[str, Tensor]) -> None:
        names = self._inputs(batch)
        wrapper = _TensorForward(self.model, names)
        sample = tuple(batch[name] for name in names)
        # The warm-up passes inside make_graphed_callables run the model in training
        # mode: keep Dice's / BatchNorm's moving averages as they were before them.
        buffers = {name: b.clone() for name, b in self.model.named_buffers()}
        set_capacity = getattr(self.model, "set_packed_capacity", None)
        if set_capacity is not None:
            set_capacity(self.capacity)
        try:
            with autocast(self.device, self.amp):
                self.graphed = torch.cuda.make_graphed_callables(
                    wrapper, sample, allow_unused_input=True
                )
            self.names = names
            self.shapes = {name: tuple(batch[name].shape) for name in names}
            logger.info(
                "recorded a CUDA graph of the training step: batch %s, %s packed rows",
                tuple(sample[0].shape),
                self.capacity,
            )
        except RuntimeError as exc:
            self.failed, self.graphed = True, None
            logger.warning("CUDA graph recording failed, training without graphs: %s", exc)
        finally:
            if set_capacity is not None:
                set_capacity(None)
            with torch.no_grad():
                for name, buffer in self.model.named_buffers():
                    buffer.copy_(buffers[name])
