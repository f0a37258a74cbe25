"""Which folders a deployment run may read and write: its path parameters must lie under roots.

A served deployment (``din serve``) executes runs that anyone who can reach
the Prefect API can trigger, with any parameters; ``source`` and
``config_file`` are paths the serving account reads and ``work_dir`` one it
writes. So a run started from a deployment accepts them only under roots
configured for the serving process:

- data roots: ``DIN_DATA_ROOTS`` (folders separated by ``os.pathsep``),
  default the data root (``DIN_DATA_DIR`` or ``<repo>/data``); they hold
  ``source`` folders and ``config_file`` files;
- work root: ``DIN_WORK_DIR``, default ``<repo>/outputs/pipeline`` (also the
  default ``work_dir``); it holds ``work_dir`` and may hold ``config_file``.

Both sides are compared after ``Path.resolve()``, so neither ``..`` nor a
symlink inside a root can lead out of it. ``source`` keywords (``auto``,
``synthetic``) and config presets (``paper``) name no path and pass.
``din serve --data-root/--work-root`` set the variables for the runs it
executes. A flow called in-process (``din run``, ``din rerun``, tests) runs
with its caller's own rights and is not restricted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from din_model.errors import ConfigError
from tasks.paths import data_root, work_root

DATA_ROOTS_ENV = "DIN_DATA_ROOTS"
SOURCE_KEYWORDS = ("auto", "synthetic")


class PathNotAllowed(ConfigError):
    """A path parameter of a deployment run lies outside the roots configured for it."""


def data_roots() -> list[Path]:
    """The configured data roots, resolved (``DIN_DATA_ROOTS``, else the data root)."""
    configured = [p for p in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if p]
    if not configured:
        return [data_root()]
    return [Path(p).expanduser().resolve() for p in configured]


def allowed_work_root() -> Path:
    return work_root()


def _is_preset(config_file: str) -> bool:
    """A bare preset name as ``din_model`` reads it (a file of that name would win)."""
    from din_model.config.files import PRESETS_DIR

    path = Path(config_file)
    if path.is_file() or "/" in config_file or path.suffix:
        return False
    return (PRESETS_DIR / f"{config_file}.yaml").is_file()


def check_inside(parameter: str, value: str, roots: Sequence[Path], hint: str) -> Path:
    """``value`` resolved; PathNotAllowed (one line) unless it lies under one of ``roots``."""
    resolved = Path(value).expanduser().resolve()
    if any(resolved.is_relative_to(root) for root in roots):
        return resolved
    allowed = ", ".join(str(root) for root in roots)
    raise PathNotAllowed(
        f"parameter {parameter} = '{value}' resolves to {resolved}, outside the allowed "
        f"roots ({allowed}); {hint}"
    )


def check_run_paths(source: str, work_dir: str | None, config_file: str | None) -> None:
    """Refuse a run whose ``source``, ``work_dir`` or ``config_file`` leave the roots."""
    data, work = data_roots(), allowed_work_root()
    data_hint = f"set {DATA_ROOTS_ENV} or `din serve --data-root`"
    work_hint = "set DIN_WORK_DIR or `din serve --work-root`"
    if source not in SOURCE_KEYWORDS:
        check_inside("source", source, data, data_hint)
    if work_dir is not None:
        check_inside("work_dir", work_dir, [work], work_hint)
    if config_file and not _is_preset(config_file):
        check_inside("config_file", config_file, [*data, work], f"{data_hint}, or {work_hint}")


def running_from_deployment() -> bool:
    """Whether the current flow run was created from a deployment (API, schedule, UI)."""
    from prefect.runtime import deployment

    return deployment.id is not None


def guard_deployment_paths(source: str, work_dir: str | None, config_file: str | None) -> None:
    """A flow's first step: in a deployment run, refuse paths outside the configured roots."""
    if running_from_deployment():
        check_run_paths(source, work_dir, config_file)
