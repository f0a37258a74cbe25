"""train.reuse_cpu_memory: large freed CPU blocks are reused instead of re-faulted."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest
import torch

from din_model.config import resolve_config
from din_model.errors import ConfigError
from din_model.training.device import configure_cpu

# Runs in a fresh interpreter: glibc's heap is process-wide, and the state hundreds of
# earlier tests leave in it (arenas, fragmentation) is not what a training process has.
PAGE_FAULT_PROBE = """
import resource, torch
from din_model.training.cpu_memory import reuse_cpu_memory

BLOCK_FLOATS = 16 * 2**20  # 64 MB: above glibc's largest mmap threshold (32 MB)

def page_faults_of_one_block():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(BLOCK_FLOATS)
    block.fill_(1.0)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

assert reuse_cpu_memory() is True
print(*[page_faults_of_one_block() for _ in range(4)])
"""
FRESH_PAGE_FAULTS = 16 * 2**20 * 4 // 4096  # 16,384 when every page of the block is new


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting only changes glibc's allocator",
)
def test_a_freed_large_block_is_reused_without_new_page_faults():
    done = subprocess.run(
        [sys.executable, "-c", PAGE_FAULT_PROBE], capture_output=True, text=True, check=True
    )
    faults = [int(n) for n in done.stdout.split()]
    # The heap grows at the first allocations; afterwards the same pages serve the block
    # (with glibc's default every allocation maps, and faults in, 16,384 fresh pages).
    assert min(faults[2:]) < FRESH_PAGE_FAULTS // 16, faults


def test_the_setting_must_be_a_boolean():
    with pytest.raises(ConfigError, match="train.reuse_cpu_memory"):
        configure_cpu({"reuse_cpu_memory": "yes"}, torch.device("cpu"))


def test_the_setting_can_be_turned_off_from_the_command_line():
    config = resolve_config("din", "movielens", overrides=["train.reuse_cpu_memory=false"])
    assert config["train"]["reuse_cpu_memory"] is False
    assert resolve_config("din", "movielens")["train"]["reuse_cpu_memory"] is True
