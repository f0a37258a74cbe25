"""Context features derived from the target event's timestamp.

Weekday and hour are taken in UTC so that they do not depend on the machine's
time zone (the same data gives the same ids everywhere). Weekday 0 is Monday.
Other context features (the display-ad ``pid``) are plain interaction columns.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400
#: 1970-01-01 was a Thursday (weekday 3 when Monday is 0).
_EPOCH_WEEKDAY = 3

#: Every possible raw value of each derived feature: their dictionaries do not
#: depend on the data, so hour 0 has the same code in every dataset.
DERIVED_DOMAINS: dict[str, range] = {"weekday": range(7), "hour": range(24)}


def weekday(timestamps: np.ndarray) -> np.ndarray:
    """Day of the week in UTC, Monday = 0 (floor division keeps pre-1970 dates right)."""
    return ((timestamps // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7).astype(np.int8)


def hour(timestamps: np.ndarray) -> np.ndarray:
    """Hour of the day in UTC, 0..23."""
    return ((timestamps // SECONDS_PER_HOUR) % 24).astype(np.int8)


_DERIVERS = {"weekday": weekday, "hour": hour}


def derive(source: str, timestamps: np.ndarray) -> np.ndarray:
    """Raw values (small ints) of a derived context feature for each timestamp."""
    return _DERIVERS[source](timestamps)


def domain(source: str) -> pl.Series:
    """The sorted raw values a derived context feature can take."""
    return pl.Series(source, list(DERIVED_DOMAINS[source]), dtype=pl.Int8())
