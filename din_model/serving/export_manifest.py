"""``export.json``: what an exported network takes and returns, and where it came from.

The manifest is what lets an exported file be served without its checkpoint:
the inputs in order (with their kind and vocabulary, to check ids), the
history length ``max_len`` the runtime cuts to, the output's meaning, and the
source checkpoint's identity (model, regulariser, config hash) so that a
served score can be traced back to a training run. Written by
:mod:`din_model.serving.export`, read by :mod:`din_model.serving.network_runtime`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from din_model.data.specs.feature_map import PADDING_ID
from din_model.errors import DataError
from din_model.serving.exportable import OUTPUT_NAME
from din_model.serving.network_inputs import NetworkSignature

MANIFEST = "export.json"
SCHEMA = "din-export/1"
FORMATS: tuple[str, ...] = ("onnx", "torchscript")
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
EXPORTERS = {"onnx": "torch.onnx.export(dynamo=True)", "torchscript": "torch.jit.trace"}


def build_manifest(
    fmt: str,
    signature: NetworkSignature,
    payload: dict[str, Any],
    checkpoint: Path,
    opset: int | None,
    external_data: str | None = None,
) -> dict[str, Any]:
    """The manifest of an export of ``checkpoint`` (its loaded ``payload``) in format ``fmt``.

    ``external_data``: the file beside ``model.onnx`` that holds the weights of a
    model too heavy for one protobuf (None: the weights are inside).
    """
    return {
        "schema": SCHEMA,
        "format": fmt,
        "model_file": MODEL_FILES[fmt],
        "external_data": external_data,
        "input_names": signature.names,
        "sequence_inputs": signature.sequence_names,
        **signature.to_dict(),
        "padding_id": PADDING_ID,
        "dynamic_axes": {
            "batch": "dimension 0 of every input and of the output",
            "history": "dimension 1 of the sequence inputs; the caller cuts it to max_len",
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": ["batch"],
            "dtype": "float32",
            "meaning": "click probability: the sigmoid is inside the graph",
        },
        "opset": opset,
        "attention_form": "dense",
        "source": {
            "checkpoint": str(checkpoint.resolve()),
            "model_name": payload.get("model_name"),
            "regularizer_name": payload.get("regularizer_name"),
            "config_hash": payload.get("config_hash"),
            "epoch": payload.get("epoch"),
            "prepared_fingerprint": payload.get("prepared_fingerprint"),
            "dataset": (payload.get("feature_map") or {}).get("dataset"),
        },
        "torch_version": torch.__version__,
        "exporter": EXPORTERS[fmt],
    }


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``export.json`` into ``folder`` (a temporary folder that is renamed as a whole)."""
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The ``export.json`` of an export folder; DataError when it is missing or not ours."""
    path = Path(folder) / MANIFEST
    expected = f"an export manifest ({SCHEMA}) written by export_checkpoint"
    if not path.is_file():
        raise DataError(path, expected, got="no such file")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, expected, got=str(exc)) from exc
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        got = manifest.get("schema") if isinstance(manifest, dict) else type(manifest).__name__
        raise DataError(path, expected, got=str(got))
    if manifest.get("format") not in FORMATS:
        raise DataError(path, f"a format in {FORMATS}", got=str(manifest.get("format")))
    return manifest
