"""Data layer: raw files -> canonical tables -> DIN samples in four feature groups."""
