"""``din rerun``: what a finished run recorded, and whether its data is still the same.

A run records its resolved config (``config.yaml``), its pipeline parameters
(``pipeline.*`` params), its seed and the manifest of its raw files
(``data_manifest.json``: size and sha256 of every file). Re-executing it
means the same config, seed and bytes; if a file changed, went missing or
appeared, the rerun is refused with the list, because any result would not
be a reproduction. Synthetic data that is gone is regenerated from its
recorded generator settings (it is deterministic) and then checked like
real data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from din_model.errors import ConfigError, DinError
from din_model.io.fingerprint import file_manifest, manifest_fingerprint

TEST_METRICS = ("test_auc", "test_gauc", "test_logloss")


class DataChanged(DinError):
    """The raw data of a recorded run is no longer what the run read."""


@dataclass
class RecordedRun:
    run_id: str
    status: str
    dataset: str
    model: str
    regularizer: str
    seed: int
    source: str
    max_len: int | None
    on_bad_lines: str
    config_file: Path
    manifest: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def synth(self) -> dict[str, Any] | None:
        return self.manifest.get("synth")


def _param(params: dict[str, str], key: str, default: str | None = None) -> str | None:
    return params.get(key, default)


def load_recorded_run(run_id: str, scratch: Path) -> RecordedRun:
    """Read a run's parameters, config and manifest from the store (artifacts into ``scratch``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from tasks.store import configure_mlflow, tracking_uri

    configure_mlflow()
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        raise ConfigError(f"no run '{run_id}' in the MLflow store {tracking_uri()}") from exc
    params, tags = run.data.params, run.data.tags
    if "pipeline.dataset" not in params:
        raise ConfigError(f"run {run_id} was not made by the din-train flow (no pipeline.* params)")
    try:
        config = Path(client.download_artifacts(run_id, "config.yaml", str(scratch)))
        manifest_path = client.download_artifacts(run_id, "data_manifest.json", str(scratch))
    except (MlflowException, OSError) as exc:
        raise ConfigError(f"run {run_id} lacks config.yaml or data_manifest.json: {exc}") from exc
    max_len = _param(params, "pipeline.max_len", "null")
    return RecordedRun(
        run_id=run_id,
        status=run.info.status,
        dataset=params["pipeline.dataset"],
        model=params["pipeline.model"],
        regularizer=params["pipeline.regularizer"],
        seed=int(params["pipeline.seed"]),
        source=tags.get("source", ""),
        max_len=None if max_len in (None, "null", "None") else int(max_len),
        on_bad_lines=_param(params, "pipeline.on_bad_lines", "error") or "error",
        config_file=config,
        manifest=json.loads(Path(manifest_path).read_text()),
        metrics=dict(run.data.metrics),
    )


def manifest_differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Human lines for every file that changed, disappeared or appeared."""
    lines = []
    for name in sorted(set(recorded) | set(current)):
        old, new = recorded.get(name), current.get(name)
        if new is None:
            lines.append(f"missing: {name}")
        elif old is None:
            lines.append(f"new file: {name}")
        elif old["sha256"] != new["sha256"]:
            lines.append(
                f"changed: {name} (size {old['size']} -> {new['size']}, sha256 "
                f"{old['sha256'][:12]}... -> {new['sha256'][:12]}...)"
            )
    return lines


def check_data(recorded: RecordedRun) -> Path:
    """The run's raw folder if it still holds exactly the recorded bytes; else DataChanged."""
    path = Path(recorded.manifest.get("path") or recorded.source)
    expected = recorded.manifest.get("fingerprint")
    synth = recorded.synth
    if not path.is_dir() and synth:
        from din_model.data.sources.synth import write_synthetic_amazon

        write_synthetic_amazon(path, scale=float(synth["scale"]), seed=int(synth["seed"]))
    if not path.is_dir():
        raise DataChanged(
            f"refusing to rerun {recorded.run_id}: its data folder {path} no longer exists "
            f"(recorded fingerprint {expected})"
        )
    current = file_manifest(path)
    if manifest_fingerprint(current) != expected:
        differences = manifest_differences(recorded.manifest.get("files", {}), current)
        raise DataChanged(
            f"refusing to rerun {recorded.run_id}: the data in {path} no longer matches the "
            f"run's fingerprint {expected} (now {manifest_fingerprint(current)}):\n  "
            + "\n  ".join(differences or ["file list unchanged but the fingerprint differs"])
        )
    return path


def compare_metrics(
    original: dict[str, float], new: dict[str, float], tolerance: float = 0.0
) -> list[tuple[str, float, float, bool]]:
    """(metric, recorded, rerun, equal) for the test metrics."""
    rows = []
    for key in TEST_METRICS:
        old = float(original.get(key, math.nan))
        fresh = float(new.get(key, math.nan))
        same = (math.isnan(old) and math.isnan(fresh)) or abs(old - fresh) <= tolerance
        rows.append((key, old, fresh, same))
    return rows
