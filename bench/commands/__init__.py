"""Benchmark sub-commands of ``din`` (``din bench``); each module defines ``register(subparsers)``."""
