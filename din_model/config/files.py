"""Where the packaged YAML layers live and how a YAML file is read.

The defaults ship inside the package (``din_model/configs``) so that an
installed ``din`` finds them without a checkout. The model and dataset
defaults are found through :mod:`din_model.registry`, not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from din_model.errors import ConfigError
from din_model.registry.files import load_mapping

CONFIG_ROOT = Path(__file__).resolve().parents[1] / "configs"
TRAIN_DEFAULTS = CONFIG_ROOT / "train.yaml"
PRESETS_DIR = CONFIG_ROOT / "presets"


def available(directory: Path) -> list[str]:
    """Names (file stems) of the YAML files in one of the packaged folders."""
    return sorted(p.stem for p in directory.glob("*.yaml")) if directory.is_dir() else []


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a syntax error names the file and line, data is never executed."""
    return load_mapping(path, "a mapping of sections (model, train, regularizer)")


def resolve_user_config(name_or_path: str | Path) -> Path:
    """A path to an existing file, or a bare preset name such as ``paper``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    if "/" not in text and path.suffix == "":
        preset = PRESETS_DIR / f"{text}.yaml"
        if preset.is_file():
            return preset
    raise ConfigError(
        f"{name_or_path}: no such config file or preset "
        f"(presets: {', '.join(available(PRESETS_DIR)) or 'none'})"
    )
