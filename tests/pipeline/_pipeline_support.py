"""Constants and helpers of the pipeline tests (a plain module: tests/ is not a package)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
TINY_CONFIG = HERE / "tiny.yaml"
PREPARE_MAX_LEN = 20  # short histories keep the tests fast
MOVIELENS_FILES = ("u.data", "u.item", "u.user", "u.genre")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_movielens(movielens_100k: Path, target: Path) -> Path:
    """A private, writable copy of the real ML-100K files (in a temporary folder)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in MOVIELENS_FILES:
        shutil.copyfile(movielens_100k / name, target / name)
    return target


def stop_process(process: subprocess.Popen, timeout: float = 60) -> int:
    """SIGINT (what Ctrl-C sends ``din serve``), then a kill if it does not stop in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode
