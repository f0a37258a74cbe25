"""Benchmark sub-commands of ``din`` (``din bench``).

Each module defines ``register(subparsers)``.
"""
