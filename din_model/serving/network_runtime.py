"""One interface over the three ways to run a trained network: eager PyTorch, ONNX, TorchScript.

A caller (the raw-request encoder, a benchmark) builds the encoded inputs
once, a dict feature name -> int64 array (sparse (B,), sequences (B, W)
right-padded with 0), and picks the runtime by name::

    network = network_runtime(path, "onnx")     # or "torch", "torchscript"
    probabilities = network.score(inputs)       # (B,) float64

Every runtime applies the same preparation (:mod:`din_model.serving.network_inputs`):
ids are checked against the vocabularies, histories longer than ``max_len``
keep their most recent ``max_len`` events (the training cut; the runtime does
it, so callers need not), trailing padding columns are trimmed, and large
batches are scored in chunks. All return float64 probabilities:

* ``torch`` (:class:`EagerNetwork`): the checkpoint's own model, in the form it
  was trained in (DIN's packed attention), sigmoid of the logits in float64: the
  reference the exports are checked against.
* ``onnx`` (:class:`OnnxNetwork`) and ``torchscript`` (:class:`TorchScriptNetwork`):
  an export of :mod:`din_model.serving.export` (dense form, float32 sigmoid inside
  the graph), widened to float64.

Threads: ONNX Runtime's are per session (``intra_op_num_threads``); PyTorch's
are per process, so ``num_threads`` of the torch runtimes calls
``torch.set_num_threads`` and applies to everything else in the process too.
"""

from __future__ import annotations

import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from din_model.errors import ConfigError
from din_model.serving.export_manifest import MANIFEST, MODEL_FILES, read_manifest
from din_model.serving.exportable import OUTPUT_NAME
from din_model.serving.loading import load_trained_model
from din_model.serving.network_inputs import (
    NetworkSignature,
    history_lengths,
    network_batch,
    validated_inputs,
)

#: rows scored per call of a network: bounds the memory of one forward pass
SCORE_CHUNK_ROWS = 65_536
#: an export's chunks are smaller: each runs the dense grid up to its longest history, and
#: rows sorted by length make short chunks of short histories
DENSE_CHUNK_ROWS = 8_192
Runtime = Literal["torch", "onnx", "torchscript"]
RUNTIMES: tuple[str, ...] = ("torch", "onnx", "torchscript")


class NetworkRuntime(ABC):
    """Scores encoded inputs with one runtime; subclasses run one prepared chunk."""

    runtime: ClassVar[str]
    #: Score rows in order of history length: an export runs the dense grid up to the
    #: longest history of its chunk, so mixing lengths wastes most of the work. The eager
    #: model packs the valid positions and keeps the input order.
    sorts_by_length: ClassVar[bool] = False

    def __init__(self, signature: NetworkSignature, *, chunk_rows: int = SCORE_CHUNK_ROWS) -> None:
        self.signature = signature
        self.chunk_rows = int(chunk_rows)

    @property
    def max_len(self) -> int:
        """History events kept per row (the training cut)."""
        return self.signature.max_len

    @property
    def input_names(self) -> list[str]:
        return self.signature.names

    def score(self, inputs: Mapping[str, Any]) -> np.ndarray:
        """(B,) float64 click probabilities, in input order; InputError for bad inputs."""
        rows, arrays = validated_inputs(inputs, self.signature)
        order = self._order(arrays, rows)
        if order is not None:
            arrays = [array[order] for array in arrays]
        scores = np.empty(rows, dtype=np.float64)
        for start in range(0, rows, self.chunk_rows):
            stop = min(rows, start + self.chunk_rows)
            batch = network_batch(arrays, self.signature, start, stop)
            scores[start:stop] = self._probabilities(batch).reshape(-1)
        if order is not None:
            scores[order] = scores.copy()
        return scores

    def _order(self, arrays: list[np.ndarray], rows: int) -> np.ndarray | None:
        """Rows by history length (stable), for runtimes that run the dense grid."""
        sequences = [a for a, s in zip(arrays, self.signature.inputs, strict=True) if s.is_sequence]
        if not self.sorts_by_length or not sequences or rows <= 1:
            return None
        return np.argsort(history_lengths(sequences), kind="stable")

    @abstractmethod
    def _probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        """Probabilities of one prepared chunk (arrays in signature order)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(inputs={self.input_names}, max_len={self.max_len})"


def _set_torch_threads(num_threads: int | None) -> None:
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))


class EagerNetwork(NetworkRuntime):
    """The loaded PyTorch model (filter remapping included): the reference the exports match."""

    runtime = "torch"

    def __init__(
        self,
        model: torch.nn.Module,
        signature: NetworkSignature,
        *,
        chunk_rows: int = SCORE_CHUNK_ROWS,
    ) -> None:
        super().__init__(signature, chunk_rows=chunk_rows)
        self.model = model.eval()
        self.device = next(iter(model.parameters())).device

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: str | Path,
        *,
        device: str | torch.device | None = None,
        num_threads: int | None = None,
    ) -> EagerNetwork:
        _set_torch_threads(num_threads)
        model, feature_map, config = load_trained_model(checkpoint, device)
        return cls(model, NetworkSignature.from_checkpoint_parts(feature_map, config))

    def _probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        tensors = {
            name: torch.from_numpy(array).to(self.device)
            for name, array in zip(self.input_names, batch, strict=True)
        }
        with torch.inference_mode():
            logits = self.model(tensors)
            return torch.sigmoid(logits.double()).cpu().numpy()


class TorchScriptNetwork(NetworkRuntime):
    """A ``model.pt`` of :func:`~din_model.serving.export.export_checkpoint`, in libtorch."""

    runtime = "torchscript"
    sorts_by_length = True

    def __init__(
        self,
        path: str | Path,
        signature: NetworkSignature,
        *,
        num_threads: int | None = None,
        chunk_rows: int = DENSE_CHUNK_ROWS,
    ) -> None:
        super().__init__(signature, chunk_rows=chunk_rows)
        _set_torch_threads(num_threads)
        with warnings.catch_warnings():
            # torch 2.13 deprecates TorchScript; libtorch still runs it, which is the point.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.module = torch.jit.load(str(path), map_location="cpu").eval()

    def _probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(*(torch.from_numpy(array) for array in batch))
        return out.double().numpy()


class OnnxNetwork(NetworkRuntime):
    """A ``model.onnx`` of :func:`~din_model.serving.export.export_checkpoint`, in ONNX Runtime.

    ``intra_op_num_threads``: threads of one operator (None: ONNX Runtime's default,
    one per physical core). ``providers``: execution providers, default the CPU.
    """

    runtime = "onnx"
    sorts_by_length = True

    def __init__(
        self,
        path: str | Path,
        signature: NetworkSignature,
        *,
        intra_op_num_threads: int | None = None,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        chunk_rows: int = DENSE_CHUNK_ROWS,
    ) -> None:
        import onnxruntime as ort

        super().__init__(signature, chunk_rows=chunk_rows)
        options = ort.SessionOptions()
        if intra_op_num_threads is not None:
            options.intra_op_num_threads = int(intra_op_num_threads)
        options.inter_op_num_threads = 1  # one sequential graph: no parallel branches to run
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        graph_inputs = [node.name for node in self.session.get_inputs()]
        if graph_inputs != self.input_names:
            raise ConfigError(f"{path}: graph inputs {graph_inputs} != manifest {self.input_names}")

    def _probabilities(self, batch: list[np.ndarray]) -> np.ndarray:
        feeds = dict(zip(self.input_names, batch, strict=True))
        (out,) = self.session.run([OUTPUT_NAME], feeds)
        return np.asarray(out, dtype=np.float64)


def load_exported(
    folder: str | Path, runtime: str | None = None, *, num_threads: int | None = None
) -> NetworkRuntime:
    """The runtime of an export folder (its manifest's format unless ``runtime`` names it)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    fmt = manifest["format"]
    if runtime is not None and runtime != fmt:
        raise ConfigError(
            f"{folder} is an export to {fmt}, not {runtime}: choose runtime '{fmt}' or export "
            f"the checkpoint ({manifest['source']['checkpoint']}) to {runtime}"
        )
    signature = NetworkSignature.from_dict(manifest)
    path = folder / manifest["model_file"]
    if fmt == "onnx":
        return OnnxNetwork(path, signature, intra_op_num_threads=num_threads)
    return TorchScriptNetwork(path, signature, num_threads=num_threads)


def _export_folder(source: Path) -> Path | None:
    """The export folder ``source`` names (the folder or its model file); None: a checkpoint."""
    if source.is_dir():
        return source
    if source.name in MODEL_FILES.values() and (source.parent / MANIFEST).is_file():
        return source.parent
    return None


def network_runtime(
    source: str | Path, runtime: Runtime = "torch", *, num_threads: int | None = None
) -> NetworkRuntime:
    """A runtime by name over a checkpoint or an export folder (or its model file).

    * ``torch`` of an export folder loads the checkpoint its manifest names.
    * ``onnx`` / ``torchscript`` of a checkpoint exports it first into a temporary
      folder (seconds for ONNX), loads the file and removes the folder.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime: expected one of {', '.join(RUNTIMES)}, got {runtime!r}")
    source = Path(source)
    folder = _export_folder(source)
    if folder is not None:
        if runtime == "torch":
            checkpoint = read_manifest(folder)["source"]["checkpoint"]
            return EagerNetwork.from_checkpoint(checkpoint, num_threads=num_threads)
        return load_exported(folder, runtime, num_threads=num_threads)
    if runtime == "torch":
        return EagerNetwork.from_checkpoint(source, num_threads=num_threads)
    from din_model.serving.export import export_checkpoint  # it verifies through this module

    with tempfile.TemporaryDirectory(prefix="din-export-") as scratch:
        target = Path(scratch) / "export"
        export_checkpoint(source, target, runtime)
        return load_exported(target, runtime, num_threads=num_threads)
