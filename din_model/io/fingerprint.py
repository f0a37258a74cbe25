"""Content fingerprints of data files, recorded with every run for reproducibility.

A file's digest is the SHA-256 of its bytes; a set of files is described by a
manifest (relative name -> size and digest) and fingerprinted as the SHA-256 of
that manifest. The fingerprint changes when any byte of the data changes and
does not depend on modification times or the absolute location of the files.

A pipeline run fingerprints its raw folder and then prepares from the same
files, so digests are remembered per process, keyed by path, size and
modification time: the second fingerprint costs a ``stat`` per file instead of
another read of every byte. As in git's "racy" rule, a file modified within the
last second is never remembered: a rewrite of the same size inside one
timestamp tick cannot then hide behind an old digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_DIGESTS: dict[tuple[str, int, int], str] = {}
_SETTLED_NS = 1_000_000_000  # files older than this are remembered


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (remembered while the file's size and mtime stay)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is not None:
        return digest
    settled = time.time_ns() - stat.st_mtime_ns > _SETTLED_NS
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    if settled:
        _DIGESTS[key] = digest
    return digest


def files_manifest(
    paths: Iterable[str | Path], root: str | Path | None = None
) -> dict[str, dict[str, Any]]:
    """Name (relative to ``root``, else the file name) -> size and sha256 of each file."""
    manifest = {}
    for path in sorted(Path(p) for p in paths):
        name = str(path.relative_to(root)) if root is not None else path.name
        manifest[name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return manifest


def file_manifest(directory: str | Path) -> dict[str, dict[str, Any]]:
    """The manifest of every visible (non-hidden) file under ``directory``."""
    directory = Path(directory)
    files = [
        path
        for path in directory.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(directory).parts)
    ]
    return files_manifest(files, root=directory)


def manifest_fingerprint(manifest: dict[str, dict[str, Any]]) -> str:
    """``sha256:`` over the sorted (name, size, sha256) entries: one value for the set."""
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint_files(paths: Iterable[str | Path], root: str | Path | None = None) -> str:
    """Return ``sha256:<hex>`` over the given files, named relative to ``root``."""
    return manifest_fingerprint(files_manifest(paths, root))
