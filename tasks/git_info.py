"""The code version recorded with every run: git commit and whether the tree was dirty.

A run is reproducible only from the code it ran; a dirty flag says that the
commit alone does not describe that code. Read-only git commands only.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tasks.store import PROJECT_ROOT

UNKNOWN = "unknown"


@dataclass(frozen=True)
class GitInfo:
    commit: str
    dirty: bool | None  # None when git could not tell

    def as_tags(self) -> dict[str, str]:
        dirty = UNKNOWN if self.dirty is None else str(self.dirty).lower()
        return {
            "git_commit": self.commit,
            "git_dirty": dirty,
            "mlflow.source.git.commit": self.commit,
        }


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(root: Path = PROJECT_ROOT) -> GitInfo:
    """Commit of HEAD and the dirty flag (tracked or untracked changes) of ``root``."""
    head = _git(["rev-parse", "HEAD"], root)
    if head is None:
        return GitInfo(commit=UNKNOWN, dirty=None)
    status = _git(["status", "--porcelain"], root)
    return GitInfo(commit=head.strip(), dirty=None if status is None else bool(status.strip()))
