"""``din serve``'s Prefect server log is written where no other user can plant a link.

The log used to go to ``/tmp/din-prefect-server-<port>.log``, opened for
writing through symlinks: a link planted there made the server overwrite
whatever it pointed to. Here a link is planted at that old path, a real
server is started with :func:`flows.server.local_server`, and the victim file
must be untouched while the log lands in a fresh 0700 folder of ours.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

import pytest
from _pipeline_support import free_port

from flows.server import local_server, private_log_file

pytestmark = pytest.mark.slow


def test_private_log_files_are_new_files_in_new_private_folders() -> None:
    first, fd1 = private_log_file()
    second, fd2 = private_log_file()
    try:
        assert first.parent != second.parent
        for path in (first, second):
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            assert path.parent.stat().st_uid == os.getuid()
    finally:
        for fd, path in ((fd1, first), (fd2, second)):
            os.close(fd)
            path.unlink()
            path.parent.rmdir()


def test_server_log_ignores_a_planted_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    port = free_port()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    planted = Path(tempfile.gettempdir()) / f"din-prefect-server-{port}.log"
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    log_path = None
    try:
        with local_server(None, port, startup_timeout=120) as url:
            assert url == f"http://127.0.0.1:{port}/api"
            shown = re.search(r"\(log: (.+?)\)", capsys.readouterr().out)
            assert shown, "the log's location is not shown"
            log_path = Path(shown.group(1))
        assert victim.read_text() == "precious\n"
        assert log_path != planted and not log_path.is_symlink()
        assert log_path.parent.name.startswith("din-prefect-server-")
        assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
        assert log_path.stat().st_size > 0  # the server wrote its output there
    finally:
        planted.unlink(missing_ok=True)
        if log_path is not None and log_path.exists():
            log_path.unlink()
            log_path.parent.rmdir()
