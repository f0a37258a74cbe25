"""The last line of defence of every reader: a polars failure becomes a DataError naming the file.

Readers are written so that bad input ends in a located bad line, never in an
exception from deep inside polars. But polars itself can fail on input nobody
foresaw -- a review found a Rust panic (``PanicException``, which is not even
an ``Exception``) on a filtered frame of several chunks -- and a user must
then still get one line naming the file, not a traceback. The message says
plainly that polars failed, so it is not mistaken for a diagnosis of the
input; the original exception is chained for ``--verbose`` runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import polars as pl

from din_model.errors import DataError

P = ParamSpec("P")
R = TypeVar("R")

POLARS_FAILURES = (pl.exceptions.PolarsError, pl.exceptions.PanicException)


def polars_failures_located(reader: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``reader`` (which takes ``bad`` or ``path``) so that polars errors name the file."""
    signature = inspect.signature(reader)

    @functools.wraps(reader)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return reader(*args, **kwargs)
        except POLARS_FAILURES as exc:
            arguments = signature.bind(*args, **kwargs).arguments
            bad = arguments.get("bad")
            path = bad.path if bad is not None else Path(arguments.get("path", "<input>"))
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise DataError(
                path,
                "input the readers can process",
                got=f"a failure inside polars, please report it ({type(exc).__name__}: {detail})",
            ) from exc

    return guarded
