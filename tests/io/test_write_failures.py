"""A failed write ends in one line naming the path and the reason, never a traceback.

Covered: ``--out`` whose parent is a file, a read-only folder, and a full disk
during ``din prepare`` (polars' parquet writer) and during checkpointing
(``torch.save``, which says "unexpected pos" and never "no space"). Each is
simulated by monkeypatching the failing call; the full and read-only disks are
also real small tmpfs mounts where this machine allows mounting them.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
import torch
from _io_helpers import FAST_TRAIN, din, one_error

POLARS_DISK_FULL = (
    "parquet: File out of specification: underlying IO error: No space left on device (os error 28)"
)
TORCH_DISK_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"


def prepare(source: Path, out: Path) -> int:
    return din("prepare", "--dataset", "movielens", "--source", str(source), "--out", str(out))


def train(data: Path, out: Path) -> int:
    return din("train", "--data", str(data), *FAST_TRAIN, "--out", str(out))


def hidden_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(".*") if p.name != ".din-output"]


@pytest.fixture()
def mount_tmpfs(tmp_path: Path) -> Iterator:
    """``mount_tmpfs(options)``: a fresh tmpfs (skipped where mounting is not allowed)."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"disk{len(mounted)}"
        point.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no mount command: the monkeypatched tests cover this case")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            reason = done.stderr.strip()
            pytest.skip(f"cannot mount a tmpfs here ({reason}); the monkeypatched tests cover it")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Leave about ``leave`` bytes free on ``disk``."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(free - leave, 0))


# -- the parent of --out is a file ------------------------------------------------------


@pytest.mark.parametrize("command", ["prepare", "train", "synth"])
def test_out_whose_parent_is_a_file(command, tiny_source, prepared_tiny, tmp_path, capsys):
    parent = tmp_path / "notes.txt"
    parent.write_text("not a folder\n")
    out = parent / "deeper" / "out"
    if command == "prepare":
        code = prepare(tiny_source, out)
    elif command == "train":
        code = train(prepared_tiny, out)
    else:
        code = din("synth", "amazon", "--scale", "0.0001", "--out", str(out))
    assert code == 2
    line = one_error(capsys, command)
    assert str(parent) in line and "not a folder" in line
    assert parent.read_text() == "not a folder\n"


# -- a read-only folder -----------------------------------------------------------------


def deny_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make creating or renaming anything inside ``folder`` fail as a read-only folder does."""
    real_mkdir, real_replace, real_open = os.mkdir, os.replace, os.open

    def denied(path) -> bool:
        return Path(path).resolve().is_relative_to(folder.resolve()) and not os.path.lexists(path)

    def refuse(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    def mkdir(path, *args, **kwargs):
        if denied(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if Path(dst).resolve().is_relative_to(folder.resolve()):
            refuse(dst)
        return real_replace(src, dst, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and denied(path):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("command", ["prepare", "train"])
def test_read_only_out_folder(command, tiny_source, prepared_tiny, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    deny_writes_under(monkeypatch, locked)
    out = locked / "out"
    code = prepare(tiny_source, out) if command == "prepare" else train(prepared_tiny, out)
    assert code == 2
    line = one_error(capsys, command)
    assert str(locked) in line and "permission denied" in line
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits; see the tests above")
def test_read_only_out_folder_by_chmod(tiny_source, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert prepare(tiny_source, locked / "out") == 2
    finally:
        locked.chmod(0o755)
    assert "permission denied" in one_error(capsys, "prepare")


def test_read_only_file_system(tiny_source, mount_tmpfs, capsys):
    disk = mount_tmpfs("ro,size=64k")
    assert prepare(tiny_source, disk / "out") == 2
    line = one_error(capsys, "prepare")
    assert str(disk) in line and "read-only file system" in line


# -- a full disk during din prepare -----------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        lambda file: pl.exceptions.ComputeError(POLARS_DISK_FULL),
        lambda file: OSError(errno.ENOSPC, "No space left on device", str(file)),
    ],
    ids=["polars", "oserror"],
)
def test_disk_full_during_prepare(failure, tiny_source, tmp_path, capsys, monkeypatch):
    """The message names --out, not the temporary folder the file was written in."""

    def full(self, file, *args, **kwargs):
        raise failure(file)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    out = tmp_path / "out"
    assert prepare(tiny_source, out) == 2
    line = one_error(capsys, "prepare")
    assert "no space left on device" in line and str(out) in line
    assert not out.exists() and hidden_leftovers(tmp_path) == []


def test_disk_full_during_prepare_on_a_real_small_disk(tiny_source, mount_tmpfs, capsys):
    disk = mount_tmpfs("size=512k")
    fill(disk, leave=8 * 1024)
    out = disk / "out"
    assert prepare(tiny_source, out) == 2
    line = one_error(capsys, "prepare")
    assert "no space left on device" in line and str(out) in line
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


# -- a full disk while writing a checkpoint ---------------------------------------------


@pytest.mark.parametrize(
    ("free", "words"), [(0, "no space left on device"), (10**12, "unexpected pos")]
)
def test_disk_full_while_checkpointing_says_so(
    free, words, prepared_tiny, tmp_path, capsys, monkeypatch
):
    """torch's own words are "unexpected pos"; the free space of the disk tells the truth."""

    def full(obj, f, *args, **kwargs):
        raise RuntimeError(TORCH_DISK_FULL)

    monkeypatch.setattr(torch, "save", full)
    disk = SimpleNamespace(total=10**12, used=10**12 - free, free=free)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: disk)
    out = tmp_path / "run"
    assert train(prepared_tiny, out) == 2
    line = one_error(capsys, "train")
    assert words in line and str(out / "checkpoints") in line
    assert hidden_leftovers(out) == []


def test_disk_full_while_checkpointing_from_the_write_error(
    prepared_tiny, tmp_path, capsys, monkeypatch
):
    """When torch's error carries the failed write's OSError, its errno is used."""

    def full(obj, f, *args, **kwargs):
        error = RuntimeError(TORCH_DISK_FULL)
        error.__context__ = OSError(errno.ENOSPC, "No space left on device")  # as torch chains it
        raise error

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "run"
    assert train(prepared_tiny, out) == 2
    line = one_error(capsys, "train")
    assert "no space left on device" in line and str(out / "checkpoints") in line


def test_disk_full_while_checkpointing_on_a_real_small_disk(prepared_tiny, mount_tmpfs, capsys):
    disk = mount_tmpfs("size=512k")
    fill(disk, leave=24 * 1024)
    out = disk / "run"
    assert train(prepared_tiny, out) == 2
    line = one_error(capsys, "train")
    assert "no space left on device" in line and str(out / "checkpoints") in line
    assert hidden_leftovers(out) == []
