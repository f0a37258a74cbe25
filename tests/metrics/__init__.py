"""Tests of din_model.metrics against scikit-learn."""
