"""Device choice (cpu | cuda | auto) and the CPU process settings (threads, allocator)."""

from __future__ import annotations

from typing import Any

import torch

from din_model.errors import ConfigError
from din_model.training.cpu_memory import reuse_cpu_memory

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str | None) -> torch.device:
    name = str(name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device={name}: CUDA is not available on this machine "
                f"(torch {torch.__version__}); use cpu or auto"
            )
        return torch.device(name)
    raise ConfigError(f"train.device: unknown '{name}'; choose one of {', '.join(DEVICES)}")


def wants_data_on_device(train: dict[str, Any], device: torch.device) -> bool:
    """Keep whole splits on the device: by default only on a GPU."""
    setting = train.get("data_on_device", "auto")
    if setting in (None, "auto"):
        return device.type == "cuda"
    if isinstance(setting, bool):
        return setting
    raise ConfigError(f"train.data_on_device: expected auto, true or false, got {setting!r}")


def configure_cpu(train: dict[str, Any], device: torch.device) -> None:
    """Thread count, and on a CPU device the allocator setting (see cpu_memory)."""
    threads = train.get("num_threads")
    if threads is not None:
        torch.set_num_threads(int(threads))
    setting = train.get("reuse_cpu_memory", True)
    if not isinstance(setting, bool):
        raise ConfigError(f"train.reuse_cpu_memory: expected true or false, got {setting!r}")
    if device.type == "cpu" and setting:
        reuse_cpu_memory()
