"""Declarations: the dataset specs (one YAML per layout family) and ``feature_map.json``.

A spec says which canonical column feeds which model feature; the feature map is
what ``din prepare`` writes from it, the contract between prepared data and models.
"""
