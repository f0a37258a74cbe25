"""Helpers of the output-safety tests: a tiny MovieLens source and the real ``din`` entry point.

The source is the first 40 users of the real ml-100k ratings with the real
item and user files, small enough that a whole ``din prepare`` takes about a
second once Great Expectations is loaded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from din_model.cli import _main

TINY_USERS = 40
# `din train` options for a model that trains in about a second
FAST_TRAIN = [
    "--model", "base",
    "--set", "model.embedding_dim=4",
    "--set", "model.mlp_hidden=[8]",
    "--set", "train.epochs=1",
    "--set", "train.num_threads=1",
    "--set", "train.progress=none",
]  # fmt: skip


def write_tiny_movielens(movielens_100k: Path, target: Path, users: int = TINY_USERS) -> Path:
    """Copy ml-100k's item/user/genre files and the ratings of users 1..``users`` to ``target``."""
    target.mkdir(parents=True)
    for name in ("u.item", "u.user", "u.genre"):
        shutil.copyfile(movielens_100k / name, target / name)
    lines = (movielens_100k / "u.data").read_text().splitlines()
    kept = [line for line in lines if int(line.split("\t", 1)[0]) <= users]
    (target / "u.data").write_text("\n".join(kept) + "\n")
    return target


def din(*argv: str) -> int:
    """The real ``din`` entry point (parsing, error handling, exit codes), din_model commands."""
    return _main.run(list(argv), ["din_model.cli"])


def error_lines(err: str, command: str) -> list[str]:
    """The ``din COMMAND: error:`` lines of captured stderr (logging may add other lines)."""
    return [line for line in err.splitlines() if line.startswith(f"din {command}: error:")]


def one_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    """The single one-line error the command printed, with no traceback anywhere."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = error_lines(err, command)
    assert len(lines) == 1, err
    return lines[0]
