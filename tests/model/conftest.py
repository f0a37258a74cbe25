"""Model tests run single-threaded: their tensors are tiny, so OpenMP threads only add
synchronisation, which on a busy 2-core machine costs a scheduler tick per operation."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
