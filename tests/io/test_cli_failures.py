"""``din``: a user-caused failure is one line and exit code 2; ``--debug`` shows the traceback.

An OSError the user can cause (a missing file, a permission, a file where a
folder belongs, a full disk) that escapes a command is reported with the path
it names; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from _io_helpers import din, error_lines

import din_model.cli.synth as synth_command
from din_model.errors import DataError

USER_ERRORS = [
    (FileNotFoundError, errno.ENOENT, "no such file or directory"),
    (PermissionError, errno.EACCES, "permission denied"),
    (NotADirectoryError, errno.ENOTDIR, "not a folder"),
    (IsADirectoryError, errno.EISDIR, "a folder"),
    (OSError, errno.ENOSPC, "no space left on device"),
]


def failing_synth(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(synth_command, "write_synthetic_amazon", fail)


@pytest.mark.parametrize(("kind", "code", "words"), USER_ERRORS, ids=lambda v: str(v))
def test_user_caused_os_errors_are_one_line_naming_the_path(
    kind, code, words, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "somewhere" / "file.json"
    failing_synth(monkeypatch, kind(code, os.strerror(code), str(path)))
    assert din("synth", "amazon", "--out", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = error_lines(err, "synth")
    assert str(path) in line and words in line


def test_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    error = PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))
    failing_synth(monkeypatch, error)
    with pytest.raises(PermissionError):
        din("--debug", "synth", "amazon", "--out", str(tmp_path / "out"))
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = ["prepare", "--dataset", "movielens", "--source", str(empty), "--out", "o"]
    assert din(*argv) == 2
    with pytest.raises(DataError):
        din("--debug", *argv)


def test_a_bug_keeps_its_traceback(tmp_path: Path, monkeypatch):
    failing_synth(monkeypatch, OSError(errno.EBADF, "Bad file descriptor"))
    with pytest.raises(OSError, match="Bad file descriptor"):
        din("synth", "amazon", "--out", str(tmp_path / "out"))
    failing_synth(monkeypatch, ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        din("synth", "amazon", "--out", str(tmp_path / "out"))
