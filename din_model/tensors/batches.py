"""Mini-batches cut by index from pre-padded split tensors.

An epoch is a seeded permutation of the row indices (one ``randperm``), and a
batch is one gather per feature: no per-sample Python, no DataLoader workers.
The permutation depends only on (seed, epoch), so a resumed run sees exactly
the batches the killed run would have seen.

With ``trim`` each batch's history columns are cut to the longest history in
that batch: padded positions contribute nothing to the models, so this only
saves work. The widths of all batches of an epoch are computed in one
vectorised step, so there is no device synchronisation per batch.

With ``packed_rows`` each batch also carries, under
:data:`~din_model.layers.packing.PACKED_ROWS_KEY`, the number of valid history
positions of its rows as a CPU scalar: a model that packs the valid positions
(DIN) then knows the packed size without reading the mask back from a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from din_model.layers.packing import PACKED_ROWS_KEY
from din_model.tensors.split import SplitTensors

EXTRA_KEYS = ("label", "user_id")


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The row order of one training epoch, a function of (seed, epoch) only."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=generator)


def _batch_widths(lengths: torch.Tensor, batch_size: int) -> list[int]:
    """Longest history of each consecutive batch of ``lengths`` (already in batch order)."""
    n = lengths.shape[0]
    if n == 0:
        return []
    pad = (-n) % batch_size
    padded = torch.nn.functional.pad(lengths, (0, pad)) if pad else lengths
    widths = padded.view(-1, batch_size).amax(dim=1).clamp_min(1)
    return widths.tolist()


def _batch_sums(lengths: torch.Tensor, batch_size: int) -> list[int]:
    """Total history length of each consecutive batch of ``lengths`` (in batch order)."""
    n = lengths.shape[0]
    if n == 0:
        return []
    pad = (-n) % batch_size
    padded = torch.nn.functional.pad(lengths, (0, pad)) if pad else lengths
    return padded.view(-1, batch_size).sum(dim=1).tolist()


def max_batch_positions(
    lengths: torch.Tensor, batch_size: int, *, shuffle: bool, seed: int, epoch: int
) -> int:
    """The most valid history positions any batch of this epoch holds.

    What a fixed packed size (CUDA graphs) must hold at least; computed on the
    host from the lengths, in the epoch's batch order.
    """
    lengths = lengths.cpu().to(torch.int64)
    if shuffle:
        lengths = lengths.index_select(0, epoch_permutation(lengths.shape[0], seed, epoch))
    return max(_batch_sums(lengths, batch_size), default=0)


def take(
    split: SplitTensors, index: torch.Tensor | slice, width: int | None = None
) -> dict[str, torch.Tensor]:
    """The batch of rows ``index``: LongTensor features, float labels and user keys.

    ``width`` cuts the sequence columns (default: the split's full width).
    """
    batch: dict[str, torch.Tensor] = {
        name: tensor[index].long() for name, tensor in split.sparse.items()
    }
    cols = slice(None) if width is None else slice(0, width)
    for name, tensor in split.sequences.items():
        # Rows and columns in one indexing step: only the kept columns are gathered.
        batch[name] = tensor[index, cols].long()
    batch["label"] = split.label[index]
    batch["user_id"] = split.user[index]
    return batch


def iterate_batches(
    split: SplitTensors,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    trim: bool = True,
    device: torch.device | None = None,
    packed_rows: bool = False,
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield the batches of one pass over ``split``.

    ``device``: where to place each batch when the split itself lives
    elsewhere (a CPU-resident split feeding a GPU model). ``packed_rows``: add
    each batch's number of valid history positions (see the module docstring).
    """
    n = len(split)
    if shuffle:
        order = epoch_permutation(n, seed, epoch).to(split.device)
        ordered_lengths = split.lengths.index_select(0, order)
    else:
        order = None
        ordered_lengths = split.lengths
    widths = (
        _batch_widths(ordered_lengths.to(torch.int64), batch_size)
        if trim and split.sequences
        else None
    )
    counts = (
        _batch_sums(ordered_lengths.to(torch.int64), batch_size)
        if packed_rows and split.sequences
        else None
    )
    for number, start in enumerate(range(0, n, batch_size)):
        stop = min(start + batch_size, n)
        index = slice(start, stop) if order is None else order[start:stop]
        batch = take(split, index, None if widths is None else widths[number])
        if device is not None and device != split.device:
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if counts is not None:
            batch[PACKED_ROWS_KEY] = torch.tensor(counts[number])
        yield batch


def batch_count(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
