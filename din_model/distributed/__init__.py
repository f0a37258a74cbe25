"""Data-parallel training: the process group, the per-rank trainer and the row sharding.

These wrap the plain modules of :mod:`din_model.training` (TorchRec style): nothing in
``training`` imports this package.
"""
