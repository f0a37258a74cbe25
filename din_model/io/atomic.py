"""Write-then-rename helpers so that a failed run never leaves half-written output.

A reader of an output directory or file either sees the previous complete
version or the new complete version, never a mix.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _temporary_sibling(target: Path) -> Path:
    return target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_output_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``target`` only on success.

    On an exception the temporary directory is removed and ``target`` is left
    exactly as it was (absent or with its previous contents).

    It replaces whatever ``target`` holds: use it for folders the program
    owns (caches); a folder the user names goes through
    :func:`din_model.io.output_dir.replace_output_dir`, which refuses to
    replace what is not ours.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(target)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    backup = None
    try:
        if target.exists():
            backup = _temporary_sibling(target)
            os.replace(target, backup)
        os.replace(tmp, target)
    except BaseException:
        if backup is not None and not target.exists():
            os.replace(backup, target)  # put the previous version back
            backup = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def atomic_output_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the same directory; it is renamed onto ``target`` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(target)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)


def write_json_atomic(target: str | Path, payload: Any) -> None:
    """Serialise ``payload`` as indented, key-sorted JSON and rename it into place."""
    with atomic_output_file(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
