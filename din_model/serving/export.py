"""Export a trained checkpoint's network to ONNX or TorchScript, with a manifest beside it.

Why export at all: the eager model needs this package, PyTorch and the
checkpoint's Python objects; an ONNX file runs in ONNX Runtime (C++, Java, C#,
a GPU or an accelerator) and a TorchScript file in libtorch, with no Python
model code. The exported graph (:class:`~din_model.serving.exportable.ProbabilityNetwork`
in its dense form) takes one int64 tensor per model feature, in the feature
map's order (sparse (B,), sequences (B, L) right-padded with 0) and returns
(B,) float32 click probabilities: the sigmoid is inside. Batch size and
history width are dynamic. The graph does not cut histories: the runtimes of
:mod:`~din_model.serving.network_runtime` cut them to ``max_len`` (the
training cut, in the manifest); a caller that feeds the file directly must.

The output folder follows the repository's rule
(:func:`~din_model.io.output_dir.replace_output_dir`): a new or empty folder,
or an earlier export with ``force``; it is written to a temporary sibling and
renamed, so it is complete or absent. It holds ``model.onnx`` or ``model.pt``
and ``export.json``::

    {"schema": "din-export/1", "format": "onnx", "model_file": "model.onnx",
     "input_names": [...], "sequence_inputs": [...], "inputs": [{name, kind, vocab_size}],
     "max_len": 50, "output": {...}, "opset": 18, "attention_form": "dense",
     "source": {"checkpoint", "model_name", "regularizer_name", "config_hash", ...},
     "torch_version": "2.13.0+cpu", "exporter": "torch.onnx.export(dynamo=True)", ...}

Before the folder is renamed into place, the written file is loaded by its
runtime and checked against the eager checkpoint on a probe batch (histories
of 0, 1 and ``max_len`` events and one longer): an exporter that mistranslates
an op fails the export instead of serving wrong scores.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from din_model.data.specs.feature_map import FEATURE_MAP_FILE
from din_model.errors import ConfigError
from din_model.io.output_dir import replace_output_dir
from din_model.serving.export_manifest import FORMATS, MODEL_FILES, build_manifest, write_manifest
from din_model.serving.exportable import (
    OUTPUT_NAME,
    ProbabilityNetwork,
    example_inputs,
    use_dense_form,
)
from din_model.serving.loading import model_from_payload
from din_model.serving.network_inputs import NetworkSignature
from din_model.serving.network_runtime import EagerNetwork, load_exported
from din_model.training.checkpoint import load_checkpoint

ExportFormat = Literal["onnx", "torchscript"]
COMMAND = "export"
# The default (ai.onnx) opset of the torch 2.13 exporter, pinned so that a torch upgrade does
# not silently raise what a serving runtime must support.
ONNX_OPSET = 18
# ONNX protobufs stop at 2 GiB; heavier weights go to an external file beside the model.
ONNX_INLINE_BYTES = 1_500_000_000
# float32 rounding between kernels and between the packed and dense forms: see the tests.
PARITY_TOLERANCE = 1e-5

logger = logging.getLogger(__name__)


class ExportMismatch(RuntimeError):
    """The exported network scores the probe batch differently from the checkpoint."""


def _parameter_bytes(module: torch.nn.Module) -> int:
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def _export_onnx(network: ProbabilityNetwork, signature: NetworkSignature, path: Path) -> None:
    """``torch.onnx.export`` with the dynamo exporter and dynamic batch / history axes."""
    batch = torch.export.Dim("batch")
    history = torch.export.Dim("history")
    shapes = tuple(
        {0: batch, 1: history} if spec.is_sequence else {0: batch} for spec in signature.inputs
    )
    with warnings.catch_warnings():
        # Reported for every export: the axis names below replace torch's own, on purpose.
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        # torch 2.13's own use of a pytree API it deprecates; nothing a caller can act on.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        torch.onnx.export(
            network,
            example_inputs(signature),
            str(path),
            input_names=signature.names,
            output_names=[OUTPUT_NAME],
            opset_version=ONNX_OPSET,
            dynamo=True,
            dynamic_shapes=(shapes,),  # one entry: forward(*ids) binds all inputs to ``ids``
            external_data=_parameter_bytes(network) > ONNX_INLINE_BYTES,
            verbose=False,
        )


def _export_torchscript(
    network: ProbabilityNetwork, signature: NetworkSignature, path: Path
) -> None:
    """``torch.jit.trace`` of the dense network; the trace keeps the size arithmetic dynamic."""
    with warnings.catch_warnings():
        # torch 2.13 deprecates tracing in favour of torch.export, which has no libtorch
        # runtime without a compiler. The TracerWarning is Dice's empty-input guard
        # (``x.numel() == 0``), frozen to its non-empty branch, which in eval mode computes
        # the same (empty) result for empty input.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        with torch.no_grad():
            traced = torch.jit.trace(network, example_inputs(signature), check_trace=False)
    traced.save(str(path))


def _onnx_opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def probe_inputs(signature: NetworkSignature, seed: int = 1) -> dict[str, np.ndarray]:
    """Five rows with histories of 0, 1, ``max_len``, ``max_len + 3`` and 2 events.

    Wider than ``max_len``, so the runtime's cut is exercised too, and a batch
    size unlike the export example's, so the batch axis must really be dynamic.
    """
    rng = np.random.default_rng(seed)
    lengths = np.array([0, 1, signature.max_len, signature.max_len + 3, 2])
    width = int(lengths.max())
    batch: dict[str, np.ndarray] = {}
    for spec in signature.inputs:
        low = min(2, spec.vocab_size - 1)
        if spec.is_sequence:
            ids = rng.integers(low, spec.vocab_size, size=(lengths.size, width))
            ids[np.arange(width)[None, :] >= lengths[:, None]] = 0
        else:
            ids = rng.integers(low, spec.vocab_size, size=lengths.size)
        batch[spec.name] = ids.astype(np.int64)
    return batch


def _verify(
    folder: Path, fmt: str, reference: torch.nn.Module, signature: NetworkSignature
) -> None:
    """Raise ExportMismatch unless the written export scores the probe batch like the model."""
    probe = probe_inputs(signature)
    expected = EagerNetwork(reference, signature).score(probe)
    got = load_exported(folder, fmt).score(probe)
    worst = float(np.max(np.abs(got - expected)))
    if not worst <= PARITY_TOLERANCE:
        raise ExportMismatch(
            f"the {fmt} export scores a probe batch up to {worst:.3g} away from the checkpoint "
            f"(tolerance {PARITY_TOLERANCE}); not written"
        )


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    fmt: ExportFormat = "onnx",
    *,
    force: bool = False,
    serving_dir: str | Path | None = None,
) -> Path:
    """Export ``checkpoint``'s scoring network into ``out_dir``; returns the model file's path.

    ``fmt``: ``onnx`` (``model.onnx``) or ``torchscript`` (``model.pt``); see the
    module doc for the graph's contract and ``export.json``. With ``serving_dir``
    (a run's ``serving/`` folder) the export also carries the raw-request encoder:
    ``serving/`` and ``feature_map.json``, so that
    :meth:`~din_model.serving.raw_scorer.RawScorer.from_export` scores raw requests
    with the exported network. ``out_dir`` must be
    new or empty, or an earlier export (replaced only with ``force``);
    OutputRefused otherwise. ExportMismatch when the written file disagrees with
    the checkpoint on the probe batch (nothing is written then).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"export format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    checkpoint = Path(checkpoint)
    payload = load_checkpoint(checkpoint)
    cpu = torch.device("cpu")
    reference, feature_map, config = model_from_payload(payload, checkpoint, cpu)
    signature = NetworkSignature.from_checkpoint_parts(feature_map, config)
    exported = use_dense_form(model_from_payload(payload, checkpoint, cpu)[0])
    network = ProbabilityNetwork(exported, signature).eval()
    out_dir = Path(out_dir)
    with replace_output_dir(out_dir, command=COMMAND, force=force, sources=[checkpoint]) as tmp:
        path = tmp / MODEL_FILES[fmt]
        if fmt == "onnx":
            _export_onnx(network, signature, path)
        else:
            _export_torchscript(network, signature, path)
        opset = _onnx_opset(path) if fmt == "onnx" else None
        weights = path.with_name(path.name + ".data")  # torch's name for external data
        external = weights.name if weights.is_file() else None
        manifest = build_manifest(fmt, signature, payload, checkpoint, opset, external)
        write_manifest(tmp, manifest)
        _verify(tmp, fmt, reference, signature)
        if serving_dir is not None:
            shutil.copytree(serving_dir, tmp / "serving")
            feature_map.save(tmp / FEATURE_MAP_FILE)
    logger.info("exported %s to %s", checkpoint, out_dir / MODEL_FILES[fmt])
    return out_dir / MODEL_FILES[fmt]
