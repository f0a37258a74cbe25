"""Scoring a trained model outside training: raw requests, exports, runtimes.

* :mod:`raw_scorer`: the registered model's core (raw requests -> probabilities);
* :mod:`raw_encoder`: raw owner-form values -> ids, with training's lookups;
* :mod:`network_runtime`: the network in eager PyTorch, ONNX Runtime or TorchScript;
* :mod:`export`: ONNX and TorchScript exports of a checkpoint.

The MLflow wrapper (``tasks/pyfunc_definition.py``) ships this package; nothing
here imports MLflow or Prefect.
"""
