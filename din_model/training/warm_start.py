"""Warm start: begin a challenger's training from the champion's weights, matched by raw value.

A retrain on new data learns its vocabularies again, so an id is a per-run index:
item ``B00005N7PS`` may be row 17 in the champion and row 23 in the challenger. The
champion's knowledge is therefore carried over by *raw value*, not by index:

* every embedding table (one per vocabulary of the feature map): for each raw value
  both runs know, the champion's row of that value is copied into the challenger's row
  of that value. Rows of values only the challenger knows keep their initialisation.
  Padding (row 0: all zero, never trained) and OOV (row 1: whatever each run never saw,
  a different set of values in each run) are not copied;
* a *hashed* table (:mod:`din_model.data.encoding.hashing`) maps a value to its row by
  the recorded function, seed and buckets, so when both runs hash a table the same way a
  row means the same values in both and every bucket row is copied; hashed differently,
  or hashed in one run only, the table is left as initialised and listed;
* every other tensor of the state dict (MLP and attention layers, Dice alphas, BatchNorm
  buffers) is copied when its name and shape match, and listed as skipped otherwise.

A champion of another model class is not a starting point at all: nothing is copied and
every tensor is listed with that reason (a retrain keeps running, cold, rather than
failing on an option). Other config differences (``mlp_hidden``, ``embedding_dim``, ...)
are settled tensor by tensor: what differs in shape is listed, the rest (the embeddings
above all, the part that takes longest to learn) is still copied.

The checkpoint (``checkpoints/best.pt``) carries the champion's feature map but not its
raw values; those are its run's ``serving/vocab/<table>.parquet`` (raw -> id), the folder
the registered model carries too. Nothing here consumes random numbers, so a warm-started
run's batch order and dropout masks are those of the same run started cold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from din_model.data.encoding.vocabulary import VOCAB_DIR
from din_model.data.specs.feature_map import FIRST_KNOWN_ID, FeatureMap, TableSpec
from din_model.errors import DataError
from din_model.training.checkpoint import load_checkpoint

logger = logging.getLogger(__name__)

#: A finished run's folder of raw-serving tables, beside ``checkpoints/``: the same name as
#: ``din_model.pipeline.layout.SERVING_DIR`` (training sits below pipeline, so not imported).
SERVING_DIR = "serving"
_SKIPS_LOGGED = 6  # the log names this many skipped tensors; the report keeps them all


@dataclass(frozen=True)
class WarmStartSource:
    """Where the champion is: its checkpoint and, unless beside it in its run, its vocabularies.

    ``serving`` is a folder holding ``vocab/`` (a run's ``serving/``, the registered model's
    ``serving`` artifact, or the champion's prepared folder); None means the run layout,
    ``<run>/serving`` for ``<run>/checkpoints/best.pt``.
    """

    checkpoint: Path
    serving: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))
        if self.serving is not None:
            object.__setattr__(self, "serving", Path(self.serving))

    @property
    def vocab_dir(self) -> Path:
        if self.serving is not None:
            return self.serving / VOCAB_DIR
        return self.checkpoint.parent.parent / SERVING_DIR / VOCAB_DIR


@dataclass
class WarmStartReport:
    """What a warm start copied: per table row counts, and every tensor copied or skipped.

    ``tables[name]``: ``copied`` rows (values both runs know), ``challenger`` and
    ``champion`` rows of known values (padding and OOV excluded). ``copied``: state-dict
    names copied (an embedding when at least one row was); ``skipped``: name -> why.
    """

    checkpoint: str
    champion_model: str
    tables: dict[str, dict[str, int]] = field(default_factory=dict)
    copied: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint,
            "champion_model": self.champion_model,
            "tables": {name: dict(counts) for name, counts in self.tables.items()},
            "copied": list(self.copied),
            "skipped": dict(self.skipped),
        }

    def lines(self) -> list[str]:
        """The log lines: one per table, one for the other tensors."""
        lines = [
            f"warm start: {name} {c['copied']:,} of {c['challenger']:,} rows from the champion"
            f" ({c['champion']:,} there)"
            for name, c in self.tables.items()
        ]
        skipped = [f"{name} ({why})" for name, why in self.skipped.items()]
        if len(skipped) > _SKIPS_LOGGED:
            skipped[_SKIPS_LOGGED:] = [f"{len(skipped) - _SKIPS_LOGGED} more"]
        lines.append(
            f"warm start: {len(self.copied)} tensors copied from {self.checkpoint}, "
            f"{len(self.skipped)} skipped" + (f": {'; '.join(skipped)}" if skipped else "")
        )
        return lines


def warm_start(
    model: nn.Module, feature_map: FeatureMap, source: WarmStartSource, *, vocab_dir: Path
) -> WarmStartReport:
    """Copy the champion's weights into ``model`` (in place) and say what was copied.

    ``feature_map`` and ``vocab_dir`` (its prepared ``vocab/`` folder) are the challenger's:
    the feature map gives the tables, the folder their raw values. Call it on a freshly
    built model, before the optimizer takes a step (the tensors are changed in place, so
    an optimizer built already keeps pointing at them).
    """
    payload = load_checkpoint(source.checkpoint)
    champion_model = str(payload.get("model_name"))
    report = WarmStartReport(str(source.checkpoint), champion_model)
    mine = model.state_dict()
    our_model = getattr(model, "model_name", type(model).__name__)
    if champion_model != our_model:
        why = f"the champion is a {champion_model} model, this run trains {our_model}"
        report.skipped = dict.fromkeys(mine, why)
        _log(report)
        return report
    champion_map = FeatureMap.from_dict(payload["feature_map"], source=source.checkpoint)
    theirs: dict[str, torch.Tensor] = payload["model_state"]
    embeddings = _embedding_names(model)
    with torch.no_grad():
        for table, name in embeddings.items():
            _copy_table(report, table, name, mine[name], theirs.get(name), feature_map,
                        champion_map, vocab_dir, source)  # fmt: skip
        for name, tensor in mine.items():
            if name in embeddings.values():
                continue
            other = theirs.get(name)
            if other is None:
                report.skipped[name] = "not in the champion"
            elif other.shape != tensor.shape:
                report.skipped[name] = (
                    f"shape {tuple(tensor.shape)} here, {tuple(other.shape)} in the champion"
                )
            else:
                tensor.copy_(other)
                report.copied.append(name)
    for name in theirs:
        if name not in mine:
            report.skipped[name] = "only in the champion"
    _log(report)
    return report


def _embedding_names(model: nn.Module) -> dict[str, str]:
    """Table name -> the state-dict name of its ``nn.Embedding`` weight."""
    tables = model.embedding_tables() if hasattr(model, "embedding_tables") else {}
    names = {id(p): n for n, p in model.named_parameters()}
    return {table: names[id(embedding.weight)] for table, embedding in tables.items()}


def _copy_table(
    report: WarmStartReport,
    table: str,
    name: str,
    target: torch.Tensor,
    origin: torch.Tensor | None,
    feature_map: FeatureMap,
    champion_map: FeatureMap,
    vocab_dir: Path,
    source: WarmStartSource,
) -> None:
    """Copy one embedding table's shared rows, or record why none were."""
    spec, other = feature_map.tables[table], champion_map.tables.get(table)
    if other is None or origin is None:
        report.skipped[name] = f"the champion has no table {table}"
        return
    if origin.shape[1] != target.shape[1]:
        report.skipped[name] = (
            f"embedding width {target.shape[1]} here, {origin.shape[1]} in the champion"
        )
        return
    rows = _shared_rows(spec, other, vocab_dir, source)
    if isinstance(rows, str):
        report.skipped[name] = rows
        return
    ours, their, counts = rows
    report.tables[table] = counts
    if len(ours) == 0:
        report.skipped[name] = "no value known to both runs"
        return
    target[torch.from_numpy(ours)] = origin[torch.from_numpy(their)].to(target.dtype)
    report.copied.append(name)


def _shared_rows(
    spec: TableSpec, other: TableSpec, vocab_dir: Path, source: WarmStartSource
) -> tuple[np.ndarray, np.ndarray, dict[str, int]] | str:
    """(challenger rows, champion rows, counts) of the values both know, or why none can be."""
    hashed = (spec.hash_buckets is not None, other.hash_buckets is not None)
    if any(hashed):
        if not all(hashed):
            where = "the champion" if hashed[1] else "this run"
            return f"hashed in {where} only: rows mean different values"
        mine = (spec.hash_buckets, spec.hash_function, spec.hash_seed)
        theirs = (other.hash_buckets, other.hash_function, other.hash_seed)
        if mine != theirs:
            return (
                f"hashed with (buckets, function, seed) {mine} here, {theirs} in the champion"
            )
        rows = np.arange(FIRST_KNOWN_ID, spec.vocab_size, dtype=np.int64)
        n = len(rows)
        return rows, rows, {"copied": n, "challenger": n, "champion": n}
    ours = _vocabulary(vocab_dir, spec, "this run's prepared vocab/ folder")
    theirs_frame = _vocabulary(
        source.vocab_dir, other,
        f"the champion's vocabularies (pass the serving folder of the run of "
        f"{source.checkpoint})",
    )  # fmt: skip
    shared = ours.join(theirs_frame, on="raw", how="inner", suffix="_champion")
    counts = {"copied": shared.height, "challenger": ours.height, "champion": theirs_frame.height}
    return (
        shared["id"].to_numpy().astype(np.int64),
        shared["id_champion"].to_numpy().astype(np.int64),
        counts,
    )


def _vocabulary(folder: Path, spec: TableSpec, what: str) -> pl.DataFrame:
    """``raw`` (as text, the form the adapters read ids in) -> ``id`` of one table.

    The file must fit the table of the feature map it is read with (one row per known
    value, ids in 2..vocab_size-1): a vocabulary of another run is refused, never used.
    """
    path = folder / f"{spec.name}.parquet"
    if not path.is_file():
        raise DataError(path, f"the vocabulary of table '{spec.name}' in {what}",
                        got="no such file")  # fmt: skip
    frame = pl.read_parquet(path, glob=False)
    if set(frame.columns) < {"raw", "id"}:
        raise DataError(path, "columns raw and id", got=", ".join(frame.columns))
    frame = frame.select(pl.col("raw").cast(pl.String), pl.col("id").cast(pl.Int64))
    ids = frame["id"]
    expected = spec.vocab_size - FIRST_KNOWN_ID
    if frame.height != expected or (
        frame.height and (ids.min() < FIRST_KNOWN_ID or ids.max() >= spec.vocab_size)
    ):
        raise DataError(
            path,
            f"{expected:,} values with ids {FIRST_KNOWN_ID}..{spec.vocab_size - 1} "
            f"(the table '{spec.name}' of the model it belongs to)",
            got=f"{frame.height:,} values: a vocabulary of another run",
        )
    return frame


def _log(report: WarmStartReport) -> None:
    for line in report.lines():
        logger.info("%s", line)
