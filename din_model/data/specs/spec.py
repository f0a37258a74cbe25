"""Declarative feature specs: which canonical column feeds which model feature.

One YAML file per layout family (``din_model/data/specs/<family>.yaml``, or a
folder of ``DIN_SPEC_DIRS``) lists the features of the four DIN groups, the
sampling protocol with its parameters, the default ``max_len`` and the
positive-rate band that validation enforces. Keeping this in data rather than
code means a new profile field or context column is a one-line change that the
protocols, the encoder and the validation all pick up. Which families exist, and
the dataset-level keys of the same files (``dataset``, ``adapter``, ...), belong
to the dataset registry (:mod:`din_model.registry.datasets`).

Tables: every non-sequence feature owns an embedding table named after itself;
a behaviour sequence names its ``target`` ad feature and shares that table, so
``hist_item_id`` and ``item_id`` look up the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from din_model.data.specs.feature_map import GROUPS, FeatureSpec, Group
from din_model.errors import ConfigError
from din_model.registry import DATASET_KEYS, spec_families
from din_model.registry import spec_file as registered_spec_file

#: Context sources computed from the target timestamp (UTC) instead of read from a column.
DERIVED_CONTEXT = ("weekday", "hour")
#: The ad feature whose source is this column is the candidate key (the item).
ITEM_KEY_SOURCE = "item_id"
PROTOCOLS = ("sequential", "user_split", "day_split")
#: The keys of a spec file this module reads; the registry reads DATASET_KEYS.
SPEC_KEYS = ("family", "description", "layouts", "protocol", "validation", "features")


@dataclass(frozen=True)
class FeatureDecl:
    """One feature of a spec: its group, the canonical column it comes from, its table."""

    name: str
    group: Group
    source: str
    target: str | None = None
    optional: bool = False

    @property
    def kind(self) -> str:
        return "sequence" if self.group == "behaviour" else "sparse"


@dataclass(frozen=True)
class DatasetSpec:
    """A parsed ``specs/<family>.yaml``."""

    family: str
    description: str
    layouts: tuple[str, ...]
    protocol: str
    max_len: int
    params: dict[str, Any]
    positive_rate: tuple[float, float]
    features: tuple[FeatureDecl, ...]
    path: Path = field(default=Path("."), compare=False)

    def group(self, group: Group) -> list[FeatureDecl]:
        return [f for f in self.features if f.group == group]

    def feature(self, name: str) -> FeatureDecl:
        for decl in self.features:
            if decl.name == name:
                return decl
        raise KeyError(name)

    def table_of(self, name: str) -> str:
        """The embedding table of a feature: its own name, or its target's for a sequence."""
        decl = self.feature(name)
        return decl.target if decl.target is not None else decl.name

    @property
    def tables(self) -> dict[str, list[FeatureDecl]]:
        """Table name -> the features that look it up, in declaration order."""
        tables: dict[str, list[FeatureDecl]] = {}
        for decl in self.features:
            tables.setdefault(self.table_of(decl.name), []).append(decl)
        return tables

    @property
    def item_key(self) -> FeatureDecl:
        """The ad feature that identifies the candidate item."""
        return next(f for f in self.group("ad") if f.source == ITEM_KEY_SOURCE)

    def without(self, names: set[str]) -> DatasetSpec:
        """A copy without the given (optional) features, e.g. profile fields a layout lacks."""
        return replace(self, features=tuple(f for f in self.features if f.name not in names))

    def feature_specs(self) -> list[FeatureSpec]:
        """The features as :class:`FeatureSpec` entries of ``feature_map.json``."""
        return [
            FeatureSpec(
                name=f.name,
                group=f.group,
                kind=f.kind,  # type: ignore[arg-type]
                table=self.table_of(f.name),
                target=f.target,
            )
            for f in self.features
        ]

    def to_dict(self) -> dict[str, Any]:
        """What the report and ``feature_map.json`` record about the spec."""
        return {
            "family": self.family,
            "protocol": self.protocol,
            "max_len": self.max_len,
            "params": self.params,
            "positive_rate": list(self.positive_rate),
            "sources": {f.name: f.source for f in self.features},
        }


def spec_path(family: str) -> Path:
    """The file of a registered layout family (ConfigError naming the families otherwise)."""
    return registered_spec_file(family).path


def load_spec(family: str) -> DatasetSpec:
    """Read and check the spec of a registered layout family."""
    return parse_spec(spec_path(family))


def spec_for_layout(layout: str) -> DatasetSpec:
    """The spec whose ``layouts`` list the adapter's recognised layout (exactly one may)."""
    specs = [load_spec(family) for family in spec_families()]
    matches = [spec for spec in specs if layout in spec.layouts]
    if len(matches) > 1:
        paths = ", ".join(str(spec.path) for spec in matches)
        raise ConfigError(f"layout {layout!r} is listed by several feature specs: {paths}")
    if not matches:
        known = sorted(name for spec in specs for name in spec.layouts)
        raise ConfigError(
            f"no feature spec for layout {layout!r}; known layouts: {', '.join(known)}"
        )
    return matches[0]


def parse_spec(path: Path) -> DatasetSpec:
    """Parse one spec file; every mistake is a ConfigError naming the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read feature spec: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    unknown = sorted(set(raw) - set(SPEC_KEYS) - set(DATASET_KEYS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(unknown)}; a spec has "
            f"{', '.join(SPEC_KEYS + DATASET_KEYS)}"
        )

    def need(mapping: dict, key: str, where: str) -> Any:
        if key not in mapping:
            raise ConfigError(f"{path}: missing key '{where}{key}'")
        return mapping[key]

    protocol = dict(need(raw, "protocol", ""))
    name = need(protocol, "name", "protocol.")
    if name not in PROTOCOLS:
        raise ConfigError(f"{path}: protocol.name {name!r} is not one of {', '.join(PROTOCOLS)}")
    max_len = need(protocol, "max_len", "protocol.")
    if not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"{path}: protocol.max_len must be a positive integer, got {max_len!r}")
    band = need(need(raw, "validation", ""), "positive_rate", "validation.")
    if not (isinstance(band, list) and len(band) == 2 and 0 <= band[0] <= band[1] <= 1):
        raise ConfigError(f"{path}: validation.positive_rate must be [low, high] in [0, 1]")

    features = []
    groups = need(raw, "features", "")
    for group in groups:
        if group not in GROUPS:
            raise ConfigError(f"{path}: features.{group} is not one of {', '.join(GROUPS)}")
    for group in GROUPS:
        for entry in groups.get(group) or []:
            if not isinstance(entry, dict) or "name" not in entry or "source" not in entry:
                raise ConfigError(f"{path}: features.{group}: each entry needs name and source")
            unknown = set(entry) - {"name", "source", "target", "optional"}
            if unknown:
                raise ConfigError(f"{path}: features.{group}.{entry['name']}: unknown {unknown}")
            features.append(
                FeatureDecl(
                    name=str(entry["name"]),
                    group=group,
                    source=str(entry["source"]),
                    target=entry.get("target"),
                    optional=bool(entry.get("optional", False)),
                )
            )
    spec = DatasetSpec(
        family=str(need(raw, "family", "")),
        description=str(raw.get("description", "")),
        layouts=tuple(need(raw, "layouts", "")),
        protocol=name,
        max_len=max_len,
        params={k: v for k, v in protocol.items() if k not in ("name", "max_len")},
        positive_rate=(float(band[0]), float(band[1])),
        features=tuple(features),
        path=path,
    )
    _check_features(spec, path)
    return spec


def _check_features(spec: DatasetSpec, path: Path) -> None:
    names = [f.name for f in spec.features]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ConfigError(f"{path}: duplicate feature names {sorted(duplicates)}")
    if sum(f.source == ITEM_KEY_SOURCE for f in spec.group("ad")) != 1:
        raise ConfigError(f"{path}: exactly one ad feature must have source '{ITEM_KEY_SOURCE}'")
    if not spec.group("behaviour"):
        raise ConfigError(f"{path}: the behaviour group needs at least one sequence")
    ad_names = {f.name for f in spec.group("ad")}
    for decl in spec.features:
        if decl.group == "behaviour" and decl.target not in ad_names:
            raise ConfigError(
                f"{path}: features.behaviour.{decl.name}: target must be an ad feature, "
                f"got {decl.target!r}"
            )
        if decl.group != "behaviour" and decl.target is not None:
            raise ConfigError(f"{path}: features.{decl.group}.{decl.name}: only sequences target")
        if decl.name in ("user_id", "label", "timestamp"):
            raise ConfigError(f"{path}: feature name {decl.name!r} is reserved")
