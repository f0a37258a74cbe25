"""Scoring a trained model outside training: loading a checkpoint and scoring frames.

The registered MLflow model ships this package (``din_model`` only) and wraps
:class:`~din_model.serving.encoded_scorer.EncodedScorer`; nothing here imports
MLflow or Prefect.
"""

from din_model.serving.encoded_scorer import EncodedScorer, InputError
from din_model.serving.loading import load_trained_model

__all__ = ["EncodedScorer", "InputError", "load_trained_model"]
