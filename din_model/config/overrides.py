"""``--set key=value`` parsing: dotted key, value read as a YAML scalar or list.

Values go through ``yaml.safe_load`` (never ``eval``), so ``[200, 80]`` is a
list, ``0.5`` a float, ``true`` a bool and anything else a string.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from typing import Any

import yaml

from din_model.config.tree import set_dotted
from din_model.errors import ConfigError

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def parse_override(text: str) -> tuple[str, Any]:
    """``"train.learning_rate=0.01"`` -> ``("train.learning_rate", 0.01)``."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not _KEY.match(key):
        raise ConfigError(
            f"--set {text!r}: expected SECTION.KEY=VALUE, e.g. train.learning_rate=0.01"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: the value is not valid YAML ({exc})") from exc
    return key, value


def overrides_to_tree(items: Iterable[str]) -> dict[str, Any]:
    """Several ``--set`` strings as one nested layer (later ones win)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        set_dotted(tree, key, value)
    return tree


def add_override_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    """The repeatable ``--set KEY=VALUE`` option, collected into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text
    )
