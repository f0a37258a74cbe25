"""The lock that makes judge-and-move of the ``champion`` alias one step per registered model.

Two retrains of one dataset finishing together would otherwise both read the old
champion, both win against it, and the later alias write would silently undo the
earlier one. Every reader-then-writer of the alias (:func:`tasks.champion.judge_and_promote`,
:func:`tasks.champion_history.set_champion`) holds this lock and reads the champion
fresh inside it, so the second retrain is judged against the first one's result.

The lock is a ``filelock.FileLock`` at ``<folder of the sqlite store>/locks/
champion-<name>.lock`` (the work root's ``locks/`` for a tracking server). It serialises
the processes of ONE machine: with a remote MLflow server and workers on several
machines, run the retrains through one Prefect work pool with a concurrency limit of 1
(README). ``fcntl`` locks die with their holder, so a killed retrain leaves no stale lock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from din_model.errors import DinError
from tasks.paths import work_root
from tasks.store import sqlite_path, tracking_uri

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 600.0


class ChampionLockTimeout(DinError):
    """Another process held the champion lock for longer than this one would wait."""


def lock_file(name: str) -> Path:
    """Where the champion lock of registered model ``name`` lives (see the module docstring)."""
    db = sqlite_path(tracking_uri())
    folder = (db.parent if db is not None else work_root()) / "locks"
    return folder / f"champion-{name}.lock"


@contextmanager
def champion_lock(name: str, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Hold the champion lock of ``name`` for the ``with`` block; yields the lock file."""
    from filelock import FileLock, Timeout

    path = lock_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise ChampionLockTimeout(
            f"{path}: the champion lock of {name} is still held by another process after "
            f"{timeout:.0f} s (a retrain judging its challenger); try again later"
        ) from None
    try:
        logger.debug("holding %s", path)
        yield path
    finally:
        lock.release()
