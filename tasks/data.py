"""Data steps of the flows: source, ingestion, validation, feature groups.

Caching (Prefect 3 ``cache_key_fn`` on the fingerprints of the inputs, see
:mod:`tasks.caching`):

- ``ingest`` is keyed on the raw files' content fingerprint and writes the
  canonical tables into a folder named by that key; a re-run on unchanged
  files is a cache hit: the files are read only to fingerprint them.
- ``validate-canonical`` is keyed the same way (the suites are part of the key).
- ``prepare-samples`` is keyed on the raw fingerprint, seed and ``max_len``; it
  runs the nested steps ``feature-groups`` -> ``validate-samples`` ->
  ``write-prepared`` and caches the prepared folder as a whole.

Large tables never go into Prefect's result storage: cached results are the
paths of content-addressed folders (a few bytes), and the flow re-runs a step
with ``refresh_cache`` if its folder has been deleted since.

Retries: the steps that read or write files retry on ``OSError`` (a busy
network disk, a full temp folder), never on a ``DinError``: bad data fails the
same way every time and must surface at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from din_model.errors import ConfigError, DataError
from din_model.io.fingerprint import file_manifest, manifest_fingerprint
from din_model.registry import synthetic_datasets, synthetic_generator
from tasks.caching import content_dir, step_key
from tasks.paths import raw_dir, synthetic_dir

DEFAULT_SYNTHETIC_SCALE = 0.01
IO_RETRIES = 2
IO_RETRY_DELAYS = [1, 5]


def retry_on_io_error(task, task_run, state) -> bool:
    """Prefect retry condition: transient I/O errors only, never a user's bad input."""
    from din_model.errors import DinError

    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError) and not isinstance(exc, DinError)


@dataclass(frozen=True)
class SourceSpec:
    """Where a run's raw data is and what it is.

    ``fingerprint`` covers every file of ``path`` (names, sizes, content; not mtimes);
    ``manifest`` maps each file to its size and sha256, so that a refused
    ``din rerun`` can say which file changed. ``synth`` records the generator
    settings of data made by ``din synth`` (regenerable on rerun).
    """

    dataset: str
    path: str
    synthetic: bool
    fingerprint: str
    manifest: dict[str, dict[str, Any]] = field(default_factory=dict)
    synth: dict[str, Any] | None = None


def describe_source(dataset: str, path: Path, synth: dict[str, Any] | None = None) -> SourceSpec:
    """Fingerprint a raw folder (one read of every byte) and note whether it is synthetic."""
    from din_model.data.sources.synth import SYNTHETIC_MARKER

    if not path.is_dir():
        raise DataError(
            path, "a directory with the raw files of " + dataset, got="no such directory"
        )
    manifest = file_manifest(path)
    return SourceSpec(
        dataset=dataset,
        path=str(path),
        synthetic=(path / SYNTHETIC_MARKER).is_file(),
        fingerprint=manifest_fingerprint(manifest),
        manifest=manifest,
        synth=synth,
    )


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and any(
        p.is_file() and not p.name.startswith(".") for p in directory.rglob("*")
    )


def generate_synthetic(dataset: str, scale: float, seed: int) -> Path:
    """The dataset's synthetic set for (scale, seed), generated once and then reused.

    The generator is the ``synthetic:`` entry of the dataset's spec (Amazon's
    writes the 2014 review format); a dataset without one is a ConfigError.
    """
    from din_model.data.sources.synth import SYNTHETIC_MARKER

    write = synthetic_generator(dataset)
    target = synthetic_dir(dataset, scale, seed)
    if not (target / SYNTHETIC_MARKER).is_file():
        write(target, scale=scale, seed=seed, force=True)  # the pipeline's own
    return target


@task(
    name="resolve-source",
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
)
def resolve_source(
    dataset: str,
    source: str,
    synthetic_scale: float = DEFAULT_SYNTHETIC_SCALE,
    synthetic_seed: int = 0,
) -> SourceSpec:
    """``auto`` | ``synthetic`` | a path -> the raw folder, its fingerprint and its origin.

    ``auto`` takes ``data/raw/<dataset>`` when it holds files (``din fetch``),
    else generates the dataset's synthetic set (if it has a generator) at a small scale.
    """
    logger = get_run_logger()
    synth = None
    if source == "auto":
        real = raw_dir(dataset)
        if _has_files(real):
            path = real
        elif dataset in synthetic_datasets():
            logger.info("no real files under %s: using synthetic %s data", real, dataset)
            source = "synthetic"
        else:
            raise ConfigError(
                f"no real {dataset} files under {real}: run `din fetch {dataset}` or pass a "
                "folder with the raw files as the source"
            )
    if source == "synthetic":
        synth = {"scale": synthetic_scale, "seed": synthetic_seed}
        path = generate_synthetic(dataset, synthetic_scale, synthetic_seed)
    elif source != "auto":
        path = Path(source).expanduser().resolve()
    spec = describe_source(dataset, path, synth)
    logger.info(
        "source %s (%s, %d files, %s)",
        spec.path,
        "synthetic" if spec.synthetic else "real",
        len(spec.manifest),
        spec.fingerprint,
    )
    return spec


def ingest_key(context, parameters: dict[str, Any]) -> str:
    spec: SourceSpec = parameters["source"]
    return step_key(
        "ingest",
        dataset=spec.dataset,
        fingerprint=spec.fingerprint,
        on_bad_lines=parameters.get("on_bad_lines", "error"),
        # the cached result is a folder under the work root: another root, another entry
        work=str(Path(parameters["work"]).resolve()),
    )


def canonical_dir(work: Path, key: str) -> Path:
    return content_dir(Path(work) / "cache" / "canonical", key)


def rejects_dir(canonical: Path) -> Path:
    """Lines skipped with ``on_bad_lines=skip`` sit next to the canonical tables they left."""
    return canonical.parent / f"{canonical.name}-rejects"


@task(
    name="ingest",
    cache_key_fn=ingest_key,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
)
def ingest_source(source: SourceSpec, work: str, on_bad_lines: str = "error") -> str:
    """Raw files -> canonical tables saved under the cache key; returns that folder."""
    from din_model.data.adapters import ingest
    from din_model.data.canonical.store import save_canonical

    logger = get_run_logger()
    key = ingest_key(None, {"source": source, "work": work, "on_bad_lines": on_bad_lines})
    target = canonical_dir(Path(work), key)
    rejects = rejects_dir(target) if on_bad_lines == "skip" else None
    data = ingest(source.dataset, source.path, on_bad_lines=on_bad_lines, rejects_dir=rejects)
    save_canonical(data, target)
    logger.info(
        "ingested %s (%s): %d interactions, %d items, %d users -> %s",
        source.dataset,
        data.layout,
        data.interactions.height,
        data.items.height,
        data.users.height,
        target,
    )
    return str(target)


def validate_key(context, parameters: dict[str, Any]) -> str:
    return step_key("validate-canonical", canonical=Path(parameters["canonical"]).name)


@task(name="validate-canonical", cache_key_fn=validate_key)
def validate_canonical_tables(canonical: str) -> dict[str, Any]:
    """Great Expectations on the canonical tables; bad data raises ``ValidationFailed``."""
    from din_model.data.canonical.store import load_canonical
    from din_model.pipeline.prepare import validate_canonical

    result = validate_canonical(load_canonical(canonical))
    get_run_logger().info("canonical tables passed validation")
    return result


@task(name="feature-groups", cache_policy=NO_CACHE, persist_result=False)
def feature_groups(canonical: str, seed: int, max_len: int | None):
    """Canonical tables -> DIN samples in the four feature groups (kept in memory)."""
    from din_model.data.canonical.store import load_canonical
    from din_model.pipeline.prepare import build_samples

    prepared = build_samples(load_canonical(canonical), seed=seed, max_len=max_len)
    get_run_logger().info("built samples with seed %d", seed)
    return prepared


@task(name="validate-samples", cache_policy=NO_CACHE, persist_result=False)
def validate_sample_tables(prepared) -> dict[str, Any]:
    """Great Expectations on the samples; bad data raises ``ValidationFailed``."""
    from din_model.pipeline.prepare import validate_samples

    result = validate_samples(prepared)
    get_run_logger().info("samples passed validation")
    return result


@task(
    name="write-prepared",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=retry_on_io_error,
)
def write_prepared_dir(prepared, target: str, validation: dict[str, Any]) -> str:
    from din_model.pipeline.prepare import write_prepared

    # the pipeline owns its cache folders: an earlier write of the same key is ours to replace
    return str(write_prepared(prepared, Path(target), validation, force=True))


def prepare_key(context, parameters: dict[str, Any]) -> str:
    return step_key(
        "prepare",
        canonical=Path(parameters["canonical"]).name,
        work=str(Path(parameters["work"]).resolve()),
        seed=parameters["seed"],
        max_len=parameters.get("max_len"),
    )


def prepared_dir(work: Path, key: str) -> Path:
    return content_dir(Path(work) / "cache" / "prepared", key)


@task(name="prepare-samples", cache_key_fn=prepare_key)
def prepare_samples(
    canonical: str,
    work: str,
    seed: int,
    max_len: int | None = None,
    canonical_validation: dict[str, Any] | None = None,
) -> str:
    """feature-groups -> validate-samples -> write-prepared, cached as one prepared folder.

    The folder's ``validation.json`` holds both stages' results (canonical and
    samples), as ``din prepare`` writes it.
    """
    key = prepare_key(
        None, {"canonical": canonical, "work": work, "seed": seed, "max_len": max_len}
    )
    prepared = feature_groups(canonical, seed, max_len)
    rejects = rejects_dir(Path(canonical))
    if rejects.is_dir():
        prepared.rejects_dir = rejects
    samples_validation = validate_sample_tables(prepared)
    validation = {"canonical": canonical_validation or {}, "samples": samples_validation}
    return write_prepared_dir(prepared, str(prepared_dir(Path(work), key)), validation)


def output_missing(path: str, marker: str | None = None) -> bool:
    """True when a cached step's folder (or the marker file in it) no longer exists."""
    folder = Path(path)
    return not folder.is_dir() or (marker is not None and not (folder / marker).is_file())
