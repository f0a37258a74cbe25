"""train.reuse_cpu_memory: large CPU blocks come from the heap (where freed ones are kept)."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import subprocess
import sys

import pytest
import torch

from din_model.config import resolve_config
from din_model.errors import ConfigError
from din_model.training.device import configure_cpu

# Runs in a fresh interpreter, so that the glibc settings start at their defaults.
# glibc's mallinfo2() counts the bytes it currently serves from mmap (hblkhd). That is
# deterministic, unlike page-fault counts (whether freed pages come back depends on the
# heap's state, which is why bench/cpu_memory.py measures those instead): a block above
# glibc's largest mmap threshold (32 MB) is always mmapped by default, and never once
# M_MMAP_MAX is 0, on any CPU and whatever the heap holds.
MMAP_PROBE = """
import ctypes, json, torch
from din_model.training.cpu_memory import reuse_cpu_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
BLOCK_FLOATS = 16 * 2**20  # 64 MB

def bytes_mapped_for_one_block():
    before = libc.mallinfo2().hblkhd
    block = torch.empty(BLOCK_FLOATS)
    during = libc.mallinfo2().hblkhd
    del block
    return during - before

default = bytes_mapped_for_one_block()
applied = reuse_cpu_memory()
print(json.dumps({"default": default, "applied": applied, "reuse": bytes_mapped_for_one_block()}))
"""
BLOCK_BYTES = 16 * 2**20 * 4


def _has_mallinfo2() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return hasattr(libc, "mallinfo2")  # glibc 2.33 and newer


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or not _has_mallinfo2(),
    reason="the setting only changes glibc's allocator (mallinfo2 needs glibc 2.33+)",
)
def test_large_blocks_come_from_the_heap_once_the_setting_is_applied():
    # glibc reads MALLOC_* variables at start-up; the probe wants its built-in defaults
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", MMAP_PROBE], capture_output=True, text=True, check=True, env=env
    )
    mapped = json.loads(done.stdout)
    assert mapped["default"] >= BLOCK_BYTES, mapped  # glibc's default: a fresh mapping
    assert mapped["applied"] is True
    assert mapped["reuse"] == 0, mapped  # served from the heap, where freed blocks stay


def test_the_setting_must_be_a_boolean():
    with pytest.raises(ConfigError, match="train.reuse_cpu_memory"):
        configure_cpu({"reuse_cpu_memory": "yes"}, torch.device("cpu"))


def test_the_setting_can_be_turned_off_from_the_command_line():
    config = resolve_config("din", "movielens", overrides=["train.reuse_cpu_memory=false"])
    assert config["train"]["reuse_cpu_memory"] is False
    assert resolve_config("din", "movielens")["train"]["reuse_cpu_memory"] is True
