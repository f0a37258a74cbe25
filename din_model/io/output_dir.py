"""The one rule for every command that writes a folder: never replace what is not ours.

Every output folder this project writes carries a small marker file,
``.din-output`` (JSON: the command, the package version, when it was
created). :func:`claim_output_dir` decides, before anything is written,
whether ``--out`` may be used:

* absent or empty: written;
* an earlier output of ours (the marker is there): replaced only with
  ``force``; an unfinished output the command can continue (``din train``'s
  checkpoints) is resumed without it;
* anything else is refused with :class:`~din_model.errors.OutputRefused`:
  an existing file, a non-empty folder without the marker (even with
  ``force``: it may be the user's notes or raw data), or a folder that is,
  lies inside or contains one of the command's sources.

:func:`replace_output_dir` is that rule around the write-then-rename of
:func:`~din_model.io.atomic.atomic_output_dir`, for commands that write a
whole folder at once (prepare, synth). The marker is hidden, so it never
enters a folder's fingerprint (:func:`~din_model.io.fingerprint.file_manifest`).
"""

from __future__ import annotations

import enum
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from din_model.errors import OutputRefused, WriteFailed
from din_model.io.atomic import atomic_output_dir, write_json_atomic
from din_model.io.failures import write_failure, writing

MARKER = ".din-output"
PACKAGE = "din-pipeline"
FORCE_HELP = (
    "replace an earlier output of din in --out (a folder din did not write is never replaced)"
)


class Claim(enum.Enum):
    """What a command may do with its output folder."""

    NEW = "new"  # absent or empty: write it
    RESUME = "resume"  # our own unfinished output of the same command: continue it
    REPLACE = "replace"  # our own earlier output, and force was given: replace it


def _version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def marker_payload(command: str) -> dict[str, Any]:
    return {
        "command": command,
        "version": _version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_marker(folder: str | Path, command: str) -> None:
    """Mark ``folder`` as an output of ``din COMMAND`` (written atomically)."""
    write_json_atomic(Path(folder) / MARKER, marker_payload(command))


def read_marker(folder: str | Path) -> dict[str, Any] | None:
    """The marker of ``folder``; None when there is none. An unreadable one still marks it ours."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"command": "?"}
    return payload if isinstance(payload, dict) else {"command": "?"}


def _overlap(out: Path, source: Path) -> str | None:
    if out == source:
        return "is"
    if source in out.parents:
        return "lies inside"
    if out in source.parents:
        return "contains"
    return None


def _refuse_sources(out: Path, sources: Iterable[str | Path]) -> None:
    resolved = out.resolve()
    for source in sources:
        relation = _overlap(resolved, Path(source).resolve())
        if relation is not None:
            raise OutputRefused(
                f"output folder {out} {relation} the source {source}; refusing to write there "
                "(choose a folder outside the source)"
            )


def _nearest_existing(path: Path) -> Path:
    current = path
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _check_parents(out: Path) -> None:
    """Fail now, not after the work, when no folder can be created at ``out``."""
    ancestor = _nearest_existing(out.parent)
    if not ancestor.is_dir():
        raise WriteFailed(out, f"{ancestor} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # a probe, not os.access: it also catches a read-only mount and works for root
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=out.parent))
    except OSError as exc:
        failure = write_failure(exc, out)
        if failure is None:
            raise
        raise WriteFailed(out, f"{out.parent}: {failure.reason}") from exc


def claim_output_dir(
    out: str | Path,
    *,
    command: str,
    force: bool = False,
    sources: Iterable[str | Path] = (),
    resumable: Callable[[Path], bool] | None = None,
) -> Claim:
    """May ``din COMMAND`` write ``out``? Returns how, or raises OutputRefused / WriteFailed.

    ``sources`` are the folders the command reads (``out`` must be none of
    them, inside none and contain none). ``resumable(out)`` tells whether an
    earlier output of the same command is unfinished and can be continued.
    Creates ``out``'s parent folders (so that a read-only or full disk shows
    now); writes nothing else.
    """
    out = Path(out)
    _refuse_sources(out, sources)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputRefused(
            f"output folder {out} is an existing file, not a folder; refusing to replace it"
        )
    _check_parents(out)
    if not out.exists():
        return Claim.NEW
    with writing(out):
        empty = not any(out.iterdir())
    if empty:
        return Claim.NEW
    marker = read_marker(out)
    if marker is None:
        raise OutputRefused(
            f"output folder {out} is not empty and was not written by din (no {MARKER}); "
            "refusing to replace it, even with --force: choose a new or empty folder"
        )
    earlier = marker.get("command", "?")
    if earlier == command and resumable is not None and resumable(out):
        return Claim.RESUME
    if not force:
        created = marker.get("created")
        when = f" (created {created})" if created else ""
        raise OutputRefused(
            f"output folder {out} holds an earlier `din {earlier}` output{when}; "
            "pass --force to replace it, or choose another folder"
        )
    return Claim.REPLACE


@contextmanager
def replace_output_dir(
    out: str | Path,
    *,
    command: str,
    force: bool = False,
    sources: Iterable[str | Path] = (),
) -> Iterator[Path]:
    """Yield an empty temporary folder that becomes ``out``, with our marker, on success.

    The rule of :func:`claim_output_dir` is applied before the work and again
    just before the rename (something may have appeared at ``out`` meanwhile).
    On any failure ``out`` is left as it was and the temporary folder removed;
    a user-fixable I/O failure (full disk, permissions) becomes WriteFailed.
    """
    out = Path(out)
    sources = list(sources)
    claim_output_dir(out, command=command, force=force, sources=sources)
    with writing(out), atomic_output_dir(out) as tmp:
        yield tmp
        write_marker(tmp, command)
        claim_output_dir(out, command=command, force=force, sources=sources)


def _same_or_inside(path: Path, source: Path) -> bool:
    path, source = path.resolve(), source.resolve()
    return path == source or source in path.parents


def claim_output_file(out: Path, *, force: bool, sources: Iterable[Path] = ()) -> None:
    """May ``out`` be written? OutputRefused (one line) before any work if not.

    The single-file form of :func:`din_model.io.output_dir.claim_output_dir`: a new path
    is written; an existing regular file is replaced only with ``force``; a folder, a
    link, a device, or one of the run's ``sources`` (or a path inside one) never.
    """
    for source in sources:
        if _same_or_inside(out, Path(source)):
            raise OutputRefused(
                f"output file {out} is or lies inside the input {source}; choose another file"
            )
    if os.path.lexists(out):
        if out.is_symlink() or not out.is_file():
            raise OutputRefused(
                f"output file {out} exists and is not a regular file; refusing to replace it"
            )
        if not force:
            raise OutputRefused(
                f"output file {out} exists; pass --force to replace it, or choose another file"
            )
    parent = out.parent
    while not os.path.lexists(parent) and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputRefused(f"output file {out}: {parent} is a file, not a folder")
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
