"""Which rows each rank trains on in an epoch, and how much each rank's gradient weighs.

One process trains an epoch as ``epoch_permutation(seed, epoch)`` cut into
batches of B = ``train.batch_size`` rows. With W ranks every rank computes the
same permutation, and every *global* batch of B rows is split into W
contiguous parts whose sizes differ by at most one; rank r trains on part r.
The per-rank batch is therefore B/W rows (B // W, or one more for the first
B % W ranks) and the global batch is the configured B: W processes take the
same optimisation steps as one.

Gradients: DDP's default all-reduce averages the ranks' gradients, which is
the global batch mean only when all parts have the same size. The comm hook
:func:`weighted_allreduce` sums ``(part / global batch) * rank gradient``
instead, which equals the single-process mean for the uneven last batch too.
When the last batch has fewer rows than there are ranks, a rank with an empty
part still takes the step (every rank must join each all-reduce) on one row
of that batch with weight 0; that row appears in its logged training loss
only.

Batch-dependent penalties (MBA, DiFacto: the rows present in the batch) are
computed on the ids of the *global* batch (:class:`GlobalBatchPenalty`), so the
penalty matches the single-process one instead of shrinking with W.
"""

# No ``from __future__ import annotations`` here: DDP checks the comm hook's annotations
# against the real types, and postponed (string) annotations fail that check.
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from din_model.distributed.group import shard_bounds
from din_model.layers.packing import PACKED_ROWS_KEY
from din_model.regularizers import Regularizer
from din_model.tensors.batches import epoch_permutation, take
from din_model.tensors.split import SplitTensors


@dataclass
class GradientWeights:
    """The current batch's weight of this rank's gradient (read by the comm hook)."""

    weight: float = 1.0


def weighted_allreduce(
    state: GradientWeights, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """DDP comm hook: sum over ranks of ``state.weight * gradient`` (instead of the mean)."""
    tensor = bucket.buffer().mul_(state.weight)
    future = dist.all_reduce(tensor, async_op=True).get_future()
    return future.then(lambda done: done.value()[0])


@dataclass
class LocalEpoch:
    """One rank's share of an epoch: its rows in training order and the batch sizes."""

    order: torch.Tensor  # the global row order of the epoch (same on every rank)
    rows: torch.Tensor  # this rank's rows, batch after batch
    local_sizes: list[int]  # rows of each of this rank's batches (0: empty part)
    global_sizes: list[int]  # rows of each global batch
    batch_size: int

    @property
    def samples(self) -> int:
        return sum(self.local_sizes)

    def weights(self) -> list[float]:
        pairs = zip(self.local_sizes, self.global_sizes, strict=True)
        return [local / total for local, total in pairs]


def local_epoch(order: torch.Tensor, batch_size: int, rank: int, world: int) -> LocalEpoch:
    """Rank ``rank``'s rows of every global batch of ``order`` (vectorised, no per-batch work)."""
    n = int(order.shape[0])
    full = n // batch_size
    start, stop = shard_bounds(batch_size, world)[rank]
    head = order[: full * batch_size].view(full, batch_size)[:, start:stop].reshape(-1)
    local_sizes = [stop - start] * full
    global_sizes = [batch_size] * full
    tail = order[full * batch_size :]
    rows = head
    if tail.numel():
        tail_start, tail_stop = shard_bounds(int(tail.numel()), world)[rank]
        rows = torch.cat([head, tail[tail_start:tail_stop]])
        local_sizes.append(tail_stop - tail_start)
        global_sizes.append(int(tail.numel()))
    return LocalEpoch(order, rows, local_sizes, global_sizes, batch_size)


def _chunk_lengths(lengths: torch.Tensor, sizes: list[int]) -> tuple[list[int], list[int]]:
    """(longest history, total history) of each consecutive chunk of ``lengths``.

    Every chunk has ``sizes[0]`` rows but the last (fewer, or none: then 1 and 0).
    One vectorised step for the epoch, so there is no device sync per batch.
    """
    if not sizes or lengths.numel() == 0:
        return [1] * len(sizes), [0] * len(sizes)
    chunk = max(sizes[0], 1)
    pad = (-lengths.shape[0]) % chunk
    padded = torch.nn.functional.pad(lengths, (0, pad)) if pad else lengths
    rows = padded.view(-1, chunk)
    widths = rows.amax(dim=1).clamp_min(1).tolist()
    totals = rows.sum(dim=1).tolist()
    missing = len(sizes) - len(widths)
    return widths + [1] * missing, totals + [0] * missing


class LazyBatch(dict):
    """The columns of some rows of a split, gathered the first time a key is read.

    The global batch only feeds batch-dependent penalties, which read one or
    two id columns; gathering the rest would be wasted work.
    """

    def __init__(self, split: SplitTensors, rows: torch.Tensor, device: torch.device) -> None:
        super().__init__()
        self._split, self._rows, self._device = split, rows, device

    def __missing__(self, key: str) -> torch.Tensor:
        split = self._split
        if key in split.sparse:
            value = split.sparse[key][self._rows].long()
        elif key in split.sequences:
            value = split.sequences[key][self._rows].long()
        elif key == "label":
            value = split.label[self._rows]
        elif key == "user_id":
            value = split.user[self._rows]
        else:
            raise KeyError(key)
        value = value.to(self._device)
        self[key] = value
        return value


@dataclass
class ShardedBatches:
    """This rank's training batches of an epoch; sets the gradient weight before each."""

    rank: int
    world: int
    #: add each batch's valid history positions under PACKED_ROWS_KEY (on a GPU, as
    #: the single-process iterator does, so DIN never reads the count back)
    packed_rows: bool = False
    weights: GradientWeights = field(default_factory=GradientWeights)
    epoch: LocalEpoch | None = None
    _split: SplitTensors | None = None
    _global_rows: torch.Tensor | None = None
    _device: torch.device | None = None

    def iterate(
        self,
        split: SplitTensors,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int,
        epoch: int,
        trim: bool,
        device: torch.device,
    ) -> Iterator[dict[str, torch.Tensor]]:
        n = len(split)
        if shuffle:
            order = epoch_permutation(n, seed, epoch).to(split.device)
        else:
            order = torch.arange(n, device=split.device)
        share = local_epoch(order, batch_size, self.rank, self.world)
        self.epoch, self._split, self._device = share, split, device
        widths = totals = None
        if split.sequences and (trim or self.packed_rows):
            lengths = split.lengths.index_select(0, share.rows).to(torch.int64)
            widths, totals = _chunk_lengths(lengths, share.local_sizes)
        position = 0
        sizes = zip(share.local_sizes, share.global_sizes, strict=True)
        for number, (size, total) in enumerate(sizes):
            first = number * batch_size
            self._global_rows = order[first : first + total]
            if size:
                rows = share.rows[position : position + size]
                position += size
                width = widths[number] if widths is not None and trim else None
                positions = totals[number] if totals is not None else None
            else:  # an empty part of a short last batch: one row, weight 0
                rows = order[first : first + 1]
                width = None
                positions = int(split.lengths[rows].sum()) if totals is not None else None
            self.weights.weight = size / total
            batch = take(split, rows, width)
            if device != split.device:
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            if self.packed_rows and positions is not None:
                batch[PACKED_ROWS_KEY] = torch.tensor(positions)
            yield batch

    def global_batch(self) -> LazyBatch:
        """The whole current global batch (every rank's part), gathered lazily."""
        assert self._split is not None and self._global_rows is not None and self._device
        return LazyBatch(self._split, self._global_rows, self._device)


class GlobalBatchPenalty(Regularizer):
    """A regulariser whose penalty sees the global batch; everything else is the wrapped one.

    With the gradient weights of :func:`weighted_allreduce` summing to 1 over
    the ranks, every rank adding the global batch's penalty gives exactly the
    single-process penalty gradient. Penalties that do not read the batch
    (dense L2) gather nothing.
    """

    def __init__(self, inner: Regularizer, batches: ShardedBatches) -> None:
        super().__init__(inner.config)
        self.inner, self.batches = inner, batches
        self.name = inner.name

    def transform_batch(
        self, batch: dict[str, torch.Tensor], training: bool
    ) -> dict[str, torch.Tensor]:
        return self.inner.transform_batch(batch, training)

    def penalty(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return self.inner.penalty(model, self.batches.global_batch())

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def describe(self) -> str:
        return self.inner.describe()
