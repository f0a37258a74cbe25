"""Packed behaviour positions: the valid (b, j) cells of a right-padded (B, L) history.

DIN's activation unit only has work at valid positions, and on short histories most of
a padded (B, L) grid is padding (Amazon Electronics: 5.5 valid positions of 100 on
average). Packing lists the valid cells once, row-major, so that the embeddings are
looked up, scored and pooled for those cells alone, and the padding is never
materialised.

Two ways to list them:

* exact (``capacity=None``): ``nonzero`` of the mask, N rows. Simple, but N is only
  known after the mask is on the host, which costs a device synchronisation on a GPU.
* to a ``capacity`` (an upper bound of the batch's valid cells, which the batch
  iterator knows from the history lengths: :data:`PACKED_ROWS_KEY`): the first
  ``count`` rows are the valid cells in the same order, the rest are filler rows
  flagged in ``valid``. It is built from a cumsum
  and a scatter, with no data-dependent shape, so it never synchronises and its shapes
  are the same for every batch (what CUDA graphs need).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Batch key of a CPU scalar: the number of valid history positions of the batch, which
# the batch iterator knows from the lengths. A packing model uses it as an exact
# capacity, so a GPU never has to tell the host how many rows there are.
PACKED_ROWS_KEY = "packed_rows"


@dataclass
class PackedPositions:
    """The valid cells of a (B, L) grid as rows.

    ``index``: (N,) flat cell ``b * L + j``; ``sample``: (N,) its row ``b``;
    ``valid``: (N,) bool, only with a capacity (filler rows are False; their
    ``index`` and ``sample`` are 0 and must be ignored through ``valid``).
    """

    index: Tensor
    sample: Tensor
    valid: Tensor | None
    batch_size: int
    length: int

    @property
    def rows(self) -> int:
        return int(self.index.shape[0])

    def gather(self, grid: Tensor, fill: int | float = 0) -> Tensor:
        """The rows' entries of a (B, L, ...) tensor; filler rows get ``fill``."""
        flat = grid.reshape(self.batch_size * self.length, *grid.shape[2:])
        taken = flat.index_select(0, self.index)
        if self.valid is None:
            return taken
        keep = self.valid.view(-1, *([1] * (taken.dim() - 1)))
        return torch.where(keep, taken, torch.full_like(taken, fill))

    def pool(self, rows: Tensor, weights: Tensor | None = None) -> Tensor:
        """(B, D): each sample's sum of its rows (N, D), weighted by ``weights`` (N,).

        Filler rows count 0: give them weight 0, or leave the weighting to ``valid``.
        """
        if weights is not None:
            rows = rows * weights.unsqueeze(1)
        elif self.valid is not None:
            rows = rows * self.valid.unsqueeze(1).to(rows.dtype)
        pooled = rows.new_zeros(self.batch_size, rows.shape[1])
        return pooled.index_add(0, self.sample, rows)

    def scatter(self, values: Tensor) -> Tensor:
        """(N,) row values back on the (B, L) grid, 0 at padding."""
        if self.valid is not None:
            values = values * self.valid.to(values.dtype)
        grid = values.new_zeros(self.batch_size * self.length)
        if self.valid is None:
            grid = grid.index_copy(0, self.index, values)
        else:
            # Filler rows point at cell 0 with value 0: add instead of copy, so they
            # cannot overwrite the real value of cell 0.
            grid = grid.index_add(0, self.index, values)
        return grid.view(self.batch_size, self.length)


def pack_positions(mask: Tensor, capacity: int | None = None) -> PackedPositions:
    """The valid cells of ``mask`` (B, L), exactly or padded to ``capacity`` rows.

    With a capacity smaller than the number of valid cells the surplus cells would be
    dropped: callers size it from the lengths of the batch (see the trainer).
    """
    batch_size, length = mask.shape
    flat = mask.reshape(-1)
    if capacity is None:
        index = flat.nonzero().squeeze(1)
        return PackedPositions(
            index=index,
            sample=torch.div(index, length, rounding_mode="floor"),
            valid=None,
            batch_size=batch_size,
            length=length,
        )
    cells = flat.shape[0]
    rank = torch.cumsum(flat, 0) - 1  # row of each valid cell
    keep = flat & (rank < capacity)
    # Every cell that is not kept goes to an extra slot that is cut off afterwards.
    slot = torch.where(keep, rank, torch.full_like(rank, capacity))
    cell_ids = torch.arange(cells, device=mask.device)
    index = torch.zeros(capacity + 1, dtype=torch.long, device=mask.device)
    index = index.scatter(0, slot, cell_ids)[:capacity]
    count = flat.sum()
    valid = torch.arange(capacity, device=mask.device) < count
    index = torch.where(valid, index, torch.zeros_like(index))
    return PackedPositions(
        index=index,
        sample=torch.div(index, length, rounding_mode="floor"),
        valid=valid,
        batch_size=batch_size,
        length=length,
    )
