"""Tests of din_model.serving: exported networks and their runtimes."""
