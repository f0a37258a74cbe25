"""What every protocol returns: an index of samples into a sorted history log.

A protocol never builds list columns itself. It returns, per sample, the
candidate (item code), the label, the target time and split, and a slice
``[hist_start, hist_end)`` into :class:`HistoryEvents`, the flat per-user
event log sorted by (user, timestamp, line). The assembly step turns those
slices into list columns with one vectorised gather (see ``history.py``) and
the validation step gathers the history timestamps with the very same slices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from din_model.data.specs.feature_map import SPLITS

TRAIN, VALID, TEST = 0, 1, 2
SPLIT_CODES = dict(zip(SPLITS, (TRAIN, VALID, TEST), strict=True))


@dataclass
class HistoryEvents:
    """Behaviour events sorted by (user, timestamp, line), one array per field.

    ``order`` is the events' position in time, computed independently of the
    per-user sort (a global rank of (timestamp, line), or the timestamp itself
    when histories and targets come from different logs); ``columns`` hold the
    codes of every behaviour feature, keyed by feature name.
    """

    timestamp: np.ndarray
    order: np.ndarray
    columns: dict[str, np.ndarray]


@dataclass
class SampleIndex:
    """One entry per sample (row of the prepared data), all numpy arrays.

    ``source_row`` is the row of the canonical interactions the sample's target
    comes from (a negative shares its positive's row): context columns such as
    ``pid`` are read through it. ``order`` is the target's position in time in
    the same scale as :attr:`HistoryEvents.order`: every history event must be
    strictly earlier.
    """

    user: np.ndarray  # int32 user codes
    item: np.ndarray  # int32 item codes of the candidate
    label: np.ndarray  # int8 0/1
    timestamp: np.ndarray  # int64 target time
    order: np.ndarray  # int64 target position in time
    split: np.ndarray  # int8 TRAIN/VALID/TEST
    source_row: np.ndarray  # int64 row of the canonical interactions
    hist_start: np.ndarray  # int64 first history event (inclusive)
    hist_end: np.ndarray  # int64 last history event (exclusive)

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> SampleIndex:
        """The samples at ``rows`` (a boolean mask or indices), in that order."""
        return SampleIndex(
            **{name: getattr(self, name)[rows] for name in self.__dataclass_fields__}
        )


@dataclass
class ProtocolResult:
    samples: SampleIndex
    history: HistoryEvents
    report: dict[str, Any] = field(default_factory=dict)
