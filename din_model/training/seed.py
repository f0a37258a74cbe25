"""Seeding and determinism: the same data, config and seed give the same run on CPU.

Every source of randomness a run touches (Python's ``random``, NumPy's global
generator, torch's CPU and CUDA generators) is seeded from one number, and
their states can be captured and restored so that a resumed run continues
exactly where the killed one stopped.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def make_deterministic(device: torch.device) -> None:
    """Ask torch for deterministic kernels.

    On CPU torch's kernels are deterministic for a fixed thread count; the flag
    turns the few nondeterministic ones into errors instead of silent drift.
    On CUDA full determinism costs speed (and needs CUBLAS_WORKSPACE_CONFIG),
    so it is left to the user there.
    """
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        # The flag also fills every new tensor with NaN, a debugging aid for reads of
        # uninitialised memory that changes no result and costs ~7% of a CPU step.
        torch.utils.deterministic.fill_uninitialized_memory = False


def rng_state() -> dict[str, Any]:
    """The state of every global generator, as tensors and plain Python values.

    Plain types keep checkpoints loadable with ``torch.load(weights_only=True)``.
    """
    numpy_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {
                "key": numpy_state["key"].numpy().astype(np.uint32),
                "pos": numpy_state["pos"],
            },
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
