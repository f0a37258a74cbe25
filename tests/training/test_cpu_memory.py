"""train.reuse_cpu_memory: large freed CPU blocks are reused instead of re-faulted."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from din_model.config import resolve_config
from din_model.errors import ConfigError
from din_model.training.cpu_memory import reuse_cpu_memory
from din_model.training.device import configure_cpu

BLOCK_FLOATS = 16 * 2**20  # 64 MB: above glibc's largest mmap threshold (32 MB)
FRESH_PAGE_FAULTS = BLOCK_FLOATS * 4 // 4096  # 16,384 when every page is new


def page_faults_of_one_block() -> int:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(BLOCK_FLOATS)
    block.fill_(1.0)
    del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting only changes glibc's allocator",
)
def test_a_freed_large_block_is_reused_without_new_page_faults():
    assert reuse_cpu_memory() is True
    faults = [page_faults_of_one_block() for _ in range(4)]
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
