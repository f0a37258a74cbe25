"""How the registries find and read their YAML files, and import what the files name.

Kept free of torch and of the rest of ``din_model`` (only :mod:`din_model.errors`):
argument parsers read the registries to build their choices, and ``din --help``
must stay fast.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import yaml

from din_model.errors import ConfigError


def search_dirs(packaged: Path, env: str) -> tuple[Path, ...]:
    """The packaged folder, then the folders listed in ``$env`` (``os.pathsep``-separated).

    A listed folder that does not exist is a ConfigError: a typo in the variable
    would otherwise hide the user's models or datasets without a word.
    """
    extra = []
    for text in os.environ.get(env, "").split(os.pathsep):
        if not text.strip():
            continue
        folder = Path(text).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"{env} lists {text!r}, which is not a folder")
        extra.append(folder)
    return (packaged, *extra)


def yaml_files(dirs: tuple[Path, ...]) -> list[Path]:
    """Every ``*.yaml`` of ``dirs``, folder by folder, by name within a folder."""
    return [path for folder in dirs for path in sorted(folder.glob("*.yaml"))]


def load_mapping(path: str | Path, expected: str = "a mapping") -> dict[str, Any]:
    """Read a YAML mapping; a syntax error names the file and line, data is never executed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        payload = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if payload is None:
        return {}
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected {expected}, got {type(payload).__name__}")
    return payload


def check_import_path(value: Any, key: str, path: Path, *, attribute: bool) -> str:
    """``module.path:name`` (``attribute``) or ``module.path``; a ConfigError otherwise."""
    shape = "module.path:name" if attribute else "module.path"
    ok = isinstance(value, str) and value.strip() == value and value != ""
    if ok:
        module, _, name = value.partition(":")
        ok = bool(module) and (bool(name) if attribute else ":" not in value)
    if not ok:
        raise ConfigError(f"{path}: '{key}' must be a string like {shape}, got {value!r}")
    return value


def import_object(target: str, where: str) -> Any:
    """The module ``a.b`` or the attribute ``a.b:name``, imported only now.

    ``where`` names the file that declared ``target``, for the error message.
    """
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{where}: cannot import {module_name!r} ({exc})") from exc
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"{where}: module {module_name!r} has no {attribute!r}") from None
