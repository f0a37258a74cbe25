"""Great Expectations suites kept as JSON in ``expectations/``, with per-feature templates.

The folder is the top-level ``expectations`` package, so the suites travel in
the wheel as package data (see :func:`expectations_dir`).

A suite file is an ordinary GE 1.x suite (``ExpectationSuite.to_json_dict()``).
Dataset-specific numbers (``max_len``, vocabulary sizes, the positive-rate
band, the number of users) are GE *suite parameters* -- ``{"$PARAMETER": name}``
-- bound when the suite runs, so one suite serves every dataset.

The feature columns themselves differ between datasets (display-ad has
``brand_id`` and no ``hist_item_id``), so the sample suite also holds
*template* expectations: an expectation whose ``meta.for_each`` is ``sparse``
or ``sequence`` is instantiated once per feature of that kind, with
``{feature}`` and ``{table}`` in its kwargs (and in parameter names) replaced.
Everything else is standard GE JSON.
"""

from __future__ import annotations

import copy
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from din_model.data.specs.feature_map import FeatureMap
from din_model.errors import ConfigError

#: The package that ships the suites as data (the repository's top-level ``expectations/``).
SUITES_PACKAGE = "expectations"
FOR_EACH = "for_each"


def expectations_dir() -> Path:
    """The suites' folder: ``DIN_EXPECTATIONS_DIR``, else the installed ``expectations`` package.

    Found through :mod:`importlib.resources` rather than a path relative to this
    file, so a wheel installed outside the checkout finds its own copy.
    """
    override = os.environ.get("DIN_EXPECTATIONS_DIR")
    if override:
        return Path(override)
    return Path(str(resources.files(SUITES_PACKAGE)))


def load_suite_dict(name: str) -> dict[str, Any]:
    """The JSON of suite ``name`` (``expectations/<name>.json``)."""
    path = expectations_dir() / f"{name}.json"
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"expectation suite {path} is missing") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("expectations"), list):
        raise ConfigError(f"{path}: expected a GE suite with an 'expectations' list")
    return payload


def _substitute(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        for placeholder, replacement in names.items():
            value = value.replace("{" + placeholder + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: _substitute(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, names) for item in value]
    return value


def expand_templates(suite: dict[str, Any], feature_map: FeatureMap) -> dict[str, Any]:
    """Instantiate ``meta.for_each`` templates for the features of ``feature_map``."""
    expanded = copy.deepcopy(suite)
    expectations = []
    for expectation in suite["expectations"]:
        kind = (expectation.get("meta") or {}).get(FOR_EACH)
        if kind is None:
            expectations.append(copy.deepcopy(expectation))
            continue
        if kind not in ("sparse", "sequence"):
            raise ConfigError(f"suite {suite.get('name')}: meta.for_each must be sparse/sequence")
        for feature in feature_map.features:
            if feature.kind != kind:
                continue
            names = {"feature": feature.name, "table": feature.table}
            instance = _substitute(copy.deepcopy(expectation), names)
            instance["meta"] = {"feature": feature.name, "table": feature.table}
            expectations.append(instance)
    expanded["expectations"] = expectations
    return expanded


def suite_parameters(suite: dict[str, Any]) -> set[str]:
    """Names of every ``$PARAMETER`` the suite uses (to check they are all bound)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "$PARAMETER" in value:
                found.add(value["$PARAMETER"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk([e.get("kwargs", {}) for e in suite["expectations"]])
    return found
