"""bench.cpu_memory runs and reports both allocator settings (no count is checked here:
page faults depend on the heap's state, see the module's docstring)."""

from __future__ import annotations

import re

from bench.cpu_memory import main


def test_the_page_fault_benchmark_reports_both_settings(capsys):
    assert main(["--rounds", "3", "--megabytes", "40"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("40 MB block = 10,240 pages")
    for setting, line in zip(("default", "reuse"), lines[1:], strict=True):
        assert re.fullmatch(
            rf"\s+{setting}: \d+ \d+ \d+  \(\d of 2 repeats faulted the block in again\)", line
        ), line
