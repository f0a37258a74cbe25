"""Typed, validated reads of a model's ``model:`` config section.

Every value a model reads goes through here, so a wrong type or an out-of-range value
stops with a ConfigError that names the key (``model.<key>``), the model and what was
expected, instead of failing somewhere inside torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from din_model.errors import ConfigError


class ModelOptions:
    """Read access to a resolved ``model:`` section (defaults already merged in)."""

    def __init__(self, model: str, values: Mapping[str, Any]) -> None:
        self.model = model
        self.values = dict(values)

    def _fail(self, key: str, expected: str, got: Any) -> ConfigError:
        return ConfigError(f"model.{key} (model {self.model}): expected {expected}, got {got!r}")

    def raw(self, key: str) -> Any:
        if key not in self.values:
            raise ConfigError(
                f"model.{key} is missing (model {self.model}); its default belongs in the "
                f"model's registry file, {self.model}.yaml (din_model/configs/models/ or a "
                "folder of DIN_MODEL_DIRS)"
            )
        return self.values[key]

    def positive_int(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self._fail(key, "a positive integer", value)
        return value

    def positive_float(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self._fail(key, "a positive number", value)
        return float(value)

    def probability(self, key: str) -> float:
        """A dropout rate: a number in [0, 1)."""
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise self._fail(key, "a number in [0, 1)", value)
        return float(value)

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def choice(self, key: str, choices: Sequence[str]) -> str:
        value = self.raw(key)
        if value not in choices:
            raise self._fail(key, f"one of {', '.join(choices)}", value)
        return value

    def int_list(self, key: str, *, allow_empty: bool = True) -> list[int]:
        """A list of layer widths such as ``[200, 80]``."""
        value = self.raw(key)
        ok = isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
        )
        if not ok or (not allow_empty and not value):
            what = "a list of positive integers" + ("" if allow_empty else " (at least one)")
            raise self._fail(key, what, value)
        return [int(v) for v in value]

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.raw(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(key, "a mapping such as {table: value}", value)
        return dict(value)
