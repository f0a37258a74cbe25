"""Peak memory of a benchmark case: the process's RSS and the GPU's allocations.

The RSS is sampled by a background thread (every 20 ms), because
``ru_maxrss`` only ever grows and so cannot give the peak of one case among
several in the same process. The GPU peak is torch's own counter, reset at
the start of the case.
"""

from __future__ import annotations

import threading
from types import TracebackType

import psutil
import torch


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.rss_mb`` / ``peak.gpu_mb``."""

    def __init__(self, device: torch.device, interval: float = 0.02) -> None:
        self.device = device
        self.interval = interval
        self.rss_mb = 0.0
        self.gpu_mb: float | None = None
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.rss_mb = max(self.rss_mb, self._process.memory_info().rss / 2**20)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.rss_mb = max(self.rss_mb, self._process.memory_info().rss / 2**20)
        if self.device.type == "cuda":
            self.gpu_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
