"""Content fingerprints of data files, recorded with every run for reproducibility.

A fingerprint is a SHA-256 over the sorted relative paths, sizes and bytes of
the files; it changes when any byte of the data changes and does not depend on
modification times or the absolute location of the directory.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def fingerprint_files(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """Return ``sha256:<hex>`` over the given files, named relative to ``root``."""
    files = sorted(Path(p) for p in paths)
    digest = hashlib.sha256()
    for path in files:
        name = str(path.relative_to(root)) if root is not None else path.name
        digest.update(name.encode() + b"\0" + str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def fingerprint_dir(directory: str | Path, pattern: str = "*") -> str:
    """Fingerprint every regular, non-hidden file under ``directory`` matching ``pattern``."""
    directory = Path(directory)
    files = [
        p
        for p in directory.rglob(pattern)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    ]
    return fingerprint_files(files, root=directory)
