"""Exported networks (ONNX, TorchScript) score like the checkpoint they came from.

Models are trained for one epoch on the hand-written prepared data of the
training tests (histories of up to 12 events, cut to ``max_len`` 8 in
training), so the exports hold real, trained weights: Dice's running
statistics, the filter's id remapping.

Tolerance of the parity checks: 1e-5 on probabilities. The reference is the
checkpoint's own eager forward (DIN in its packed form) plus a float64
sigmoid; the exports run the dense form in float32 with other kernels (ONNX
Runtime's Gemm/MatMul, a different summation order over the padded history)
and a float32 sigmoid. Each of the few layers (embedding, a 3-layer
activation unit, a weighted sum, a 3-layer MLP) adds rounding of a few float32
ulps (2**-24 ~ 6e-8 relative) of values of order one; through a sigmoid,
whose slope is at most 1/4, the probability moves by well under 1e-6 (we see
~5e-8). 1e-5 leaves room for other CPUs' kernels while still catching any real
error: a wrong id, a lost remapping, a history cut at the wrong end or
batch statistics in Dice move scores by 1e-3 and more.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from training._prepared_data import write_prepared  # tests/ is on sys.path (package tests)

from din_model.data.specs.feature_map import OOV_ID
from din_model.errors import ConfigError, OutputRefused
from din_model.io.output_dir import MARKER
from din_model.pipeline import fit_and_score
from din_model.serving.export import export_checkpoint
from din_model.serving.export_manifest import MANIFEST
from din_model.serving.loading import load_trained_model
from din_model.serving.network_inputs import InputError, history_length
from din_model.serving.network_runtime import (
    EagerNetwork,
    OnnxNetwork,
    TorchScriptNetwork,
    network_runtime,
)
from din_model.training.checkpoint import load_checkpoint

TOLERANCE = 1e-5  # see the module doc
MAX_LEN = 8  # the training cut (the prepared histories reach 12)
FORMATS = ("onnx", "torchscript")
FAST = {
    "model": {"embedding_dim": 8, "mlp_hidden": [16, 8]},
    "train": {
        "epochs": 1,
        "batch_size": 128,
        "learning_rate": 0.01,
        "max_len": MAX_LEN,
        "progress": "none",
        "num_threads": 1,
    },
}
# run -> (model, regulariser)
RUNS = {
    "base": ("base", None),
    "din": ("din", None),
    "din_dice": ("din_dice", None),  # Dice scores with its running statistics in eval mode
    "din_filter": ("din", "filter"),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run name -> best checkpoint of a one-epoch fit (a second or so each)."""
    root = tmp_path_factory.mktemp("export-runs")
    data = write_prepared(root / "prepared", users=60, per_user=12)
    out = {}
    for run, (model, regularizer) in RUNS.items():
        run_config = copy.deepcopy(FAST)
        if model.startswith("din"):
            run_config["model"]["attention_hidden"] = [16, 8]
        result = fit_and_score(data, root / run, model, regularizer, run_config)
        out[run] = result.layout.best_checkpoint
    return out


class _Exports(dict):
    """(run, format) -> export folder, exported on first use and kept for the module."""

    def __init__(self, checkpoints: dict[str, Path], root: Path) -> None:
        super().__init__()
        self.checkpoints, self.root = checkpoints, root

    def __missing__(self, key: tuple[str, str]) -> Path:
        run, fmt = key
        folder = self.root / f"{run}-{fmt}"
        export_checkpoint(self.checkpoints[run], folder, fmt)
        self[key] = folder
        return folder


@pytest.fixture(scope="module")
def exports(checkpoints, tmp_path_factory) -> _Exports:
    return _Exports(checkpoints, tmp_path_factory.mktemp("exports"))


def _histories(rng: np.random.Generator, lengths: list[int], vocab: int) -> list[np.ndarray]:
    # int64 arrays, not Python lists: a column of empty Python lists only has Arrow type
    # list<null>, which the encoded scorer's padded_sequence cannot fill (ArrowInvalid)
    return [rng.integers(2, vocab, size=n).astype(np.int64) for n in lengths]


def _request(checkpoint: Path, lengths: list[int], width: int, seed: int):
    """(frame of id lists, its arrays right-padded to ``width``): one batch, two encodings."""
    _, feature_map, _ = load_trained_model(checkpoint)
    rng = np.random.default_rng(seed)
    columns, arrays = {}, {}
    for spec in feature_map.features:
        vocab = feature_map.tables[spec.table].vocab_size
        if spec.kind == "sequence":
            lists = _histories(rng, lengths, vocab)
            padded = np.zeros((len(lengths), width), dtype=np.int64)
            for row, events in enumerate(lists):
                padded[row, : len(events)] = events
            columns[spec.name], arrays[spec.name] = lists, padded
        else:
            ids = rng.integers(2, vocab, size=len(lengths))
            columns[spec.name], arrays[spec.name] = ids, ids.astype(np.int64)
    return pd.DataFrame(columns), arrays


def _recent(lists: pd.Series, max_len: int) -> np.ndarray:
    """Each list's last ``max_len`` ids, right-padded: the training cut, written out plainly."""
    kept = [list(events)[-max_len:] for events in lists]
    padded = np.zeros((len(kept), max(1, *(len(k) for k in kept))), dtype=np.int64)
    for row, events in enumerate(kept):
        padded[row, : len(events)] = events
    return padded


def _reference(checkpoint: Path, frame: pd.DataFrame) -> np.ndarray:
    """The checkpoint's own forward + sigmoid; histories cut as in training."""
    model, feature_map, config = load_trained_model(checkpoint)
    max_len = history_length(config, feature_map)
    inputs = {
        spec.name: _recent(frame[spec.name], max_len)
        if spec.kind == "sequence"
        else frame[spec.name].to_numpy(dtype=np.int64)
        for spec in feature_map.features
    }
    with torch.inference_mode():
        logits = model({name: torch.from_numpy(array) for name, array in inputs.items()})
    return torch.sigmoid(logits.double()).numpy()


# Batches: (history lengths, padded width). Batch sizes 7, 2, 11, 4 (the export traced 3 rows);
# widths 1, MAX_LEN, MAX_LEN + 4 (longer histories keep their last MAX_LEN events) and 0.
BATCHES = [
    ([0, 1, MAX_LEN, MAX_LEN + 3, 3, 0, MAX_LEN + 4], MAX_LEN + 4),
    ([1, 0], 1),
    ([MAX_LEN, 2, 0, 1, MAX_LEN, 5, 7, 1, 0, MAX_LEN, 3], MAX_LEN),
    ([0, 0, 0, 0], 0),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("run", ["base", "din", "din_dice", "din_filter"])
def test_exported_network_scores_like_the_checkpoint(run, fmt, checkpoints, exports) -> None:
    exported = network_runtime(exports[run, fmt], fmt)
    eager = network_runtime(checkpoints[run], "torch")
    assert exported.max_len == eager.max_len == MAX_LEN
    for seed, (lengths, width) in enumerate(BATCHES):
        frame, arrays = _request(checkpoints[run], lengths, width, seed)
        expected = _reference(checkpoints[run], frame)
        got = exported.score(arrays)
        assert got.dtype == np.float64 and got.shape == (len(lengths),)
        assert np.max(np.abs(got - expected)) <= TOLERANCE, (lengths, width)
        assert np.max(np.abs(eager.score(arrays) - expected)) <= 1e-7


def test_onnx_graph_has_fixed_shape_ops_and_dynamic_axes(exports) -> None:
    import onnx

    proto = onnx.load(str(exports["din_dice", "onnx"] / "model.onnx"))
    ops = {node.op_type for node in proto.graph.node}
    assert "NonZero" not in ops  # the dense attention: no data-dependent shapes
    dims = {
        graph_input.name: [
            d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim
        ]
        for graph_input in proto.graph.input
    }
    assert dims["hist_item_id"] == ["batch", "history"] and dims["item_id"] == ["batch"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_manifest_describes_the_export(fmt, checkpoints, exports) -> None:
    folder = exports["din_filter", fmt]
    manifest = json.loads((folder / MANIFEST).read_text())
    payload = load_checkpoint(checkpoints["din_filter"])
    _, feature_map, _ = load_trained_model(checkpoints["din_filter"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MARKER, MANIFEST, "model.onnx" if fmt == "onnx" else "model.pt"]
    )
    assert manifest["format"] == fmt
    assert manifest["input_names"] == [f.name for f in feature_map.features]
    assert manifest["sequence_inputs"] == ["hist_item_id", "hist_cate_id"]
    assert manifest["max_len"] == MAX_LEN
    assert manifest["opset"] == (18 if fmt == "onnx" else None)
    assert manifest["output"]["name"] == "probability"
    assert manifest["source"]["model_name"] == "din"
    assert manifest["source"]["regularizer_name"] == "filter"
    assert manifest["source"]["config_hash"] == payload["config_hash"]
    assert manifest["torch_version"] == torch.__version__
    assert json.loads((folder / MARKER).read_text())["command"] == "export"


def test_filter_remapping_survives_export(checkpoints, exports) -> None:
    """Ids the filter dropped score exactly like the OOV id in every runtime."""
    checkpoint = checkpoints["din_filter"]
    remaps = load_checkpoint(checkpoint)["regularizer_state"]["remaps"]
    item_lookup = remaps["item_id"].numpy()
    dropped = np.flatnonzero(item_lookup == OOV_ID)
    dropped = dropped[dropped > OOV_ID]
    assert dropped.size >= 5, "the filter dropped too few item ids to test"
    _, arrays = _request(checkpoint, [3, 3, 0, 0], 3, seed=9)
    arrays["item_id"][[0, 2]] = dropped[:2]
    arrays["hist_item_id"][0] = dropped[2:5]
    twin = {name: array.copy() for name, array in arrays.items()}
    twin["item_id"][[0, 2]] = OOV_ID
    twin["hist_item_id"][0] = OOV_ID
    networks = [network_runtime(checkpoint, "torch")]
    networks += [network_runtime(exports["din_filter", fmt], fmt) for fmt in FORMATS]
    # After the remapping both batches hold the same ids, so each runtime computes the same
    # thing twice: equal up to nothing; 1e-7 only allows for a kernel that is not bitwise
    # repeatable across calls.
    same = 1e-7
    for network in networks:
        np.testing.assert_allclose(network.score(arrays), network.score(twin), rtol=0, atol=same)
    # ... which the model behind the remapping would not do: the test can fail. The dropped
    # ids keep embedding rows of their own (drawn apart from OOV's at initialisation), so
    # without the remapping the scores must differ by more than the bound above, or that
    # check proved nothing.
    inner = EagerNetwork(load_trained_model(checkpoint)[0].model, networks[0].signature)
    assert np.max(np.abs(inner.score(arrays) - inner.score(twin))) > same


def test_export_refuses_a_foreign_folder(checkpoints, tmp_path) -> None:
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "mine.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(OutputRefused, match="not written by din"):
            export_checkpoint(checkpoints["base"], foreign, "torchscript", force=force)
    assert sorted(p.name for p in foreign.iterdir()) == ["mine.txt"]
    run_folder = checkpoints["base"].parent.parent  # holds the checkpoint: never replaced
    with pytest.raises(OutputRefused, match="contains the source"):
        export_checkpoint(checkpoints["base"], run_folder, "torchscript", force=True)


def test_an_earlier_export_is_replaced_only_with_force(checkpoints, tmp_path) -> None:
    out = tmp_path / "export"
    path = export_checkpoint(checkpoints["base"], out, "torchscript")
    assert path == out / "model.pt" and path.is_file()
    with pytest.raises(OutputRefused, match="--force"):
        export_checkpoint(checkpoints["din"], out, "torchscript")
    export_checkpoint(checkpoints["din"], out, "torchscript", force=True)
    assert json.loads((out / MANIFEST).read_text())["source"]["model_name"] == "din"


def test_runtimes_are_chosen_by_name(checkpoints, exports) -> None:
    onnx_folder = exports["din", "onnx"]
    one_thread = network_runtime(onnx_folder, "onnx", num_threads=1)
    assert isinstance(one_thread, OnnxNetwork)
    assert one_thread.session.get_session_options().intra_op_num_threads == 1
    assert isinstance(network_runtime(onnx_folder / "model.onnx", "onnx"), OnnxNetwork)
    # the eager model of an export is its source checkpoint
    assert isinstance(network_runtime(onnx_folder, "torch"), EagerNetwork)
    # a checkpoint is exported on the fly into a temporary folder
    assert isinstance(network_runtime(checkpoints["din"], "torchscript"), TorchScriptNetwork)
    with pytest.raises(ConfigError, match="an export to onnx, not torchscript"):
        network_runtime(onnx_folder, "torchscript")
    with pytest.raises(ConfigError, match="runtime"):
        network_runtime(onnx_folder, "tensorrt")  # type: ignore[arg-type]


def test_bad_inputs_are_refused(exports) -> None:
    network = network_runtime(exports["din", "onnx"], "onnx")
    good = {
        "item_id": np.array([2, 3]),
        "cate_id": np.array([2, 3]),
        "hist_item_id": np.array([[2, 0], [4, 5]]),
        "hist_cate_id": np.array([[2, 0], [4, 5]]),
        "weekday": np.array([2, 3]),
    }
    assert network.score(good).shape == (2,)
    assert network.score({name: array[:0] for name, array in good.items()}).shape == (0,)
    with pytest.raises(InputError, match="missing inputs: weekday"):
        network.score({k: v for k, v in good.items() if k != "weekday"})
    with pytest.raises(InputError, match="ids must lie in"):
        network.score({**good, "item_id": np.array([2, 10_000])})
    with pytest.raises(InputError, match="batch size"):
        network.score({**good, "weekday": np.array([2])})
    with pytest.raises(InputError, match="integer ids"):
        network.score({**good, "item_id": np.array([2.0, 3.0])})
