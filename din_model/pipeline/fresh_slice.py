"""The held-back newest slice of an arriving source, as raw requests.

Champion and challenger are judged on the same samples: those whose event
(the target interaction) belongs to the newest arrival, which neither model
trained on. The layout's sampling protocol runs over every arrival, history
and newest together, exactly as :func:`din_model.pipeline.prepare.raw_samples`
runs it, so each sample's history holds everything earlier (older arrivals
included) and its label follows the protocol's rule (MovieLens: rating >= 4;
Amazon: the review is a positive, paired with a sampled negative). Samples
of every split are kept: the split assignment is the protocol's, not a
statement about the slice.

Rows are decoded to raw ids (:func:`din_model.data.samples.raw_view.raw_selection`),
so models with different vocabularies score the very same requests.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from din_model.data.canonical.merge import merge_canonical
from din_model.data.canonical.schema import CanonicalData
from din_model.data.encoding.coded import code_canonical
from din_model.data.protocols import run_protocol
from din_model.data.samples.raw_inputs import raw_inputs
from din_model.data.samples.raw_view import raw_selection
from din_model.data.specs.spec import spec_for_layout
from din_model.errors import ConfigError


def newest_line_start(history: CanonicalData) -> int:
    """The first ``line`` the newest part gets in ``merge_canonical([history, newest])``."""
    lines = history.interactions["line"]
    return int(lines.max()) + 1 if lines.len() else 0


def fresh_slice_rows(
    history: CanonicalData,
    newest: CanonicalData,
    *,
    seed: int,
    max_len: int | None = None,
) -> pl.DataFrame:
    """Every sample whose event is one of ``newest``'s interactions, as raw requests + ``label``.

    Same columns as :func:`din_model.pipeline.prepare.raw_samples` (``user_id``
    included), in the protocol's sample order.
    """
    spec = spec_for_layout(history.layout)
    length = spec.max_len if max_len is None else max_len
    if length < 1:
        raise ConfigError(f"--max-len must be a positive integer, got {length}")
    merged = merge_canonical([history, newest])
    coded = code_canonical(merged, spec)
    result = run_protocol(coded, seed=seed, max_len=length)
    # merge_canonical shifts the newest part's lines past the history's, and repeats it
    # drops keep their line: a sample's event is new exactly when its line is that high
    event_line = coded.interactions.line[result.samples.source_row]
    selection = np.flatnonzero(event_line >= newest_line_start(history))
    return raw_selection(coded, result, raw_inputs(coded.spec, merged), selection)
