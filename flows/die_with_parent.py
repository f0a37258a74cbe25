"""Start a child process that the kernel kills when its parent dies, even by SIGKILL.

A server started for one ``din`` command (Prefect's API) must not outlive it:
``atexit`` hooks and ``finally`` blocks do not run when the parent is killed
with SIGKILL, and the orphan would keep its port and database open forever.
On Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` asks the kernel to kill the
child the moment its parent exits, however it exits. The setting survives
``execve``, so it is made in a tiny trampoline (this file run as a script:
``python -I die_with_parent.py PARENT_PID COMMAND...``) that then executes
the real command in the same process. Doing it in ``preexec_fn`` instead is
unsafe in a process that already has threads. The trampoline also checks
that its parent is still the process that started it, in case the parent
died before the setting took effect.

SIGKILL rather than SIGTERM: nobody is left to wait for a graceful shutdown,
and Prefect's processes may ignore SIGTERM for a long time; the sqlite
database a server holds is crash-safe. The signal is delivered when the
*thread* that started the child exits, so start such children from the main
thread. On other systems the command runs without this guarantee.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _ask_for_death_signal(sig: int) -> bool:
    """Set this process's parent-death signal; False where the system has no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(errno)}")
    return True


def popen_tied_to_parent(command: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """``subprocess.Popen(command, **kwargs)``, killed by the kernel when this process dies."""
    trampoline = [sys.executable, "-I", os.path.abspath(__file__), str(os.getpid())]
    return subprocess.Popen([*trampoline, *command], **kwargs)


def main(argv: Sequence[str]) -> None:
    """Trampoline: ``PARENT_PID COMMAND [ARGS...]``; becomes COMMAND (never returns)."""
    parent, command = int(argv[0]), list(argv[1:])
    _ask_for_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was set up
        os._exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
