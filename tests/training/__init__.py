"""Tests of din_model.training, the regularisers, the config layers and `din train`."""
