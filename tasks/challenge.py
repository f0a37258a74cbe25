"""What a retrain's challenger is judged on: the held-back slice and the data it came from.

The champion and the challenger are scored on the same rows, through their
registered raw-request models (:mod:`tasks.champion`), so the rows must be raw
requests: the newest arrival of an arriving source (held back from training,
:mod:`tasks.arrivals`), else the challenger's own test split decoded to raw values
(:func:`din_model.pipeline.prepare.raw_samples`, the rows its test metrics come
from). ``family`` and ``synthetic`` decide whether a head to head is meaningful at
all (:func:`din_model.pipeline.promotion.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl


@dataclass(frozen=True)
class Challenge:
    """The slice a challenger is judged on and the identity of its training data.

    ``slice_rows``: a parquet of raw requests plus ``label``; None means "the test
    split of ``canonical``", decoded when the version is judged (a second run of the
    sampling protocol over the canonical tables: seconds on the sets here; writing the
    raw test split at prepare time would save it).
    """

    slice_label: str
    family: str
    synthetic: bool
    canonical: str
    seed: int
    max_len: int | None
    slice_rows: str | None = None
    policy: dict[str, Any] = field(default_factory=dict)

    def slice_frame(self) -> pl.DataFrame:
        """The raw rows (with ``label``) both models are scored on."""
        if self.slice_rows is not None:
            return pl.read_parquet(Path(self.slice_rows))
        from din_model.data.canonical.store import load_canonical
        from din_model.pipeline.prepare import raw_samples

        return raw_samples(
            load_canonical(self.canonical), seed=self.seed, max_len=self.max_len, split="test"
        )
