"""Benchmark scripts: speed targets are measured here, never in timed tests."""
