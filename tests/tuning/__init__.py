"""Tests of din tune: search spaces, the Optuna study, the din-tune flow on real data."""
