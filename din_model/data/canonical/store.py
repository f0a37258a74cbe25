"""Save and load :class:`CanonicalData` as a directory, so pipeline steps can cache ingest.

Layout of the directory (written atomically: a reader sees the old complete
version or the new one, never a mix):

* ``interactions.parquet``, ``items.parquet``, ``users.parquet`` and, when the
  source has one, ``behaviors.parquet``;
* ``canonical.json``: dataset, layout, synthetic flag, report, source files and
  the table names, plus a format version so that an old cache is recognised.

Parquet round-trips the polars dtypes exactly, so a loaded copy equals the
ingested one.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from din_model.data.canonical.schema import CanonicalData
from din_model.errors import DataError
from din_model.io.atomic import atomic_output_dir, write_json_atomic

MANIFEST = "canonical.json"
FORMAT_VERSION = 1
_TABLES = ("interactions", "items", "users", "behaviors")


def save_canonical(data: CanonicalData, directory: str | Path) -> None:
    """Write ``data`` to ``directory`` (replacing it as a whole on success)."""
    directory = Path(directory)
    with atomic_output_dir(directory) as tmp:
        tables = []
        for name in _TABLES:
            frame = getattr(data, name)
            if frame is None:
                continue
            frame.write_parquet(tmp / f"{name}.parquet", compression="zstd", statistics=False)
            tables.append(name)
        write_json_atomic(
            tmp / MANIFEST,
            {
                "format_version": FORMAT_VERSION,
                "dataset": data.dataset,
                "layout": data.layout,
                "synthetic": data.synthetic,
                "tables": tables,
                "source_files": [str(path) for path in data.source_files],
                "report": data.report,
            },
        )


def load_canonical(directory: str | Path) -> CanonicalData:
    """Read a directory written by :func:`save_canonical`."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(
            manifest_path, "the manifest of saved canonical tables", got="no such file"
        ) from exc
    except ValueError as exc:
        raise DataError(manifest_path, "a JSON manifest", got=str(exc)) from exc
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(
            manifest_path,
            f"format_version {FORMAT_VERSION}",
            column="format_version",
            got=repr(manifest.get("format_version")),
        )
    tables: dict[str, pl.DataFrame] = {}
    for name in manifest["tables"]:
        path = directory / f"{name}.parquet"
        try:
            tables[name] = pl.read_parquet(path, glob=False)  # a path, not a pattern
        except (FileNotFoundError, pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(path, f"the saved {name} table (parquet)", got=str(exc)) from exc
    missing = [name for name in ("interactions", "items", "users") if name not in tables]
    if missing:
        raise DataError(
            manifest_path, "the tables interactions, items and users", got=f"missing {missing}"
        )
    return CanonicalData(
        dataset=manifest["dataset"],
        layout=manifest["layout"],
        interactions=tables["interactions"],
        items=tables["items"],
        users=tables["users"],
        behaviors=tables.get("behaviors"),
        source_files=[Path(path) for path in manifest["source_files"]],
        synthetic=bool(manifest["synthetic"]),
        report=manifest["report"],
    )
