"""An exclusive advisory lock on a file, shared by every process on the machine.

Used to serialise work that must not run twice at once against one local
resource, such as creating the schema of a fresh MLflow sqlite store. The
lock is ``fcntl.flock`` on a separate lock file: the kernel releases it when
the holder exits, even on SIGKILL, so a crashed process never leaves a stale
lock behind. It waits with a deadline instead of blocking forever, so a hung
holder turns into an error that names the lock file.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

POLL_S = 0.05


class LockTimeout(TimeoutError):
    """The lock stayed held by another process for longer than the caller would wait."""


@contextmanager
def exclusive_lock(path: Path, timeout: float = 300.0) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created 0600 if missing) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{path} is still locked by another process after {timeout:.0f} s"
                    ) from None
                time.sleep(POLL_S)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
