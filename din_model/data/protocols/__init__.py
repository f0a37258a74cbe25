"""Sampling protocols: canonical data -> DIN samples, chosen by the layout's spec.

Each protocol is a function ``build(coded, *, seed, max_len) -> ProtocolResult``
over int-coded data (see ``base.py``); the registry maps the spec's protocol
name to it, and :func:`protocol_for_layout` maps an adapter's layout to the
protocol through the layout's spec.
"""

from __future__ import annotations

from collections.abc import Callable

from din_model.data.encoding.coded import CodedData
from din_model.data.protocols import day_split, sequential, user_split
from din_model.data.protocols.base import ProtocolResult
from din_model.data.specs.spec import spec_for_layout
from din_model.errors import ConfigError

Protocol = Callable[..., ProtocolResult]

PROTOCOLS: dict[str, Protocol] = {
    "sequential": sequential.build,
    "user_split": user_split.build,
    "day_split": day_split.build,
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {name!r}; expected one of {', '.join(PROTOCOLS)}"
        ) from None


def protocol_for_layout(layout: str) -> str:
    """The protocol name of a recognised layout (e.g. ``ml-100k`` -> ``user_split``)."""
    return spec_for_layout(layout).protocol


def run_protocol(coded: CodedData, *, seed: int, max_len: int) -> ProtocolResult:
    return get_protocol(coded.spec.protocol)(coded, seed=seed, max_len=max_len)
