"""Cache keys of the data steps: fingerprints of their inputs, never timestamps.

A key combines the content fingerprint of the raw files, the step's own
parameters, and a fingerprint of the code and rules that shape its output
(the data layer's sources, specs and expectation suites), so that

- a re-run on unchanged files finds the cached result and skips the step;
- a changed byte in the data, a different seed or a changed data-layer
  module gives a new key, and the step runs again.

Keys are hex digests: they name files in Prefect's result storage and the
content-addressed output folders of :mod:`tasks.data`.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from tasks.store import PROJECT_ROOT

# What determines the output of ingestion and sample building besides the data.
_DATA_CODE = (
    "din_model/data",
    "din_model/io",
    "din_model/pipeline/prepare.py",
    "din_model/validation",
    "expectations",
)
_SUFFIXES = {".py", ".yaml", ".yml", ".json"}


@lru_cache(maxsize=1)
def data_code_fingerprint() -> str:
    """sha256 over the data layer's source files, specs and suites (relative names + bytes)."""
    digest = hashlib.sha256()
    for folder in _DATA_CODE:
        root = PROJECT_ROOT / folder
        if not root.is_dir():
            continue
        for path in sorted(p for p in root.rglob("*") if p.suffix in _SUFFIXES and p.is_file()):
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def step_key(step: str, **inputs: Any) -> str:
    """``<step>-<sha256 of the inputs and the data code>`` (stable across processes)."""
    payload = json.dumps(inputs, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{payload}\0{data_code_fingerprint()}".encode()).hexdigest()
    return f"din-{step}-{digest[:40]}"


def content_dir(root: Path, key: str) -> Path:
    """The folder that holds the output of the step whose cache key is ``key``."""
    return Path(root) / key
