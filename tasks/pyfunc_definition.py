"""Models-from-code entry of the registered model: MLflow executes this file when loading.

Logging the model as code (instead of a cloudpickled object) means loading it
never unpickles Python objects; the weights travel as the ``checkpoint``
artifact, the run's raw-request tables as the ``serving`` artifact, and the code
as ``code_paths`` (the ``din_model`` package only). This file is copied into the
model, so it holds the whole MLflow wrapper: a thin :class:`mlflow.pyfunc.PythonModel`
around :class:`din_model.serving.raw_scorer.RawScorer`.
"""

import mlflow
from mlflow.pyfunc import PythonModel

from din_model.serving.raw_scorer import CHECKPOINT_ARTIFACT, SERVING_ARTIFACT, RawScorer


class DinPyfuncModel(PythonModel):
    """pyfunc wrapper: raw requests (owner-form ids, timestamp, history lists) -> probabilities.

    ``model_config={"runtime": "onnx"}`` at load (``mlflow.pyfunc.load_model(uri,
    model_config=...)``) runs the network on ONNX Runtime (exported at load), and
    ``"num_threads"`` sets its threads; the default is the PyTorch checkpoint.
    """

    def load_context(self, context) -> None:
        artifacts = context.artifacts
        options = dict(context.model_config or {})
        self.scorer = RawScorer.from_checkpoint(
            artifacts[CHECKPOINT_ARTIFACT],
            artifacts[SERVING_ARTIFACT],
            options.get("runtime", "torch"),
            num_threads=options.get("num_threads"),
        )

    def predict(self, context, model_input, params=None):
        """Click probability per request row (float64, in input order)."""
        return self.scorer.score(model_input)


mlflow.models.set_model(DinPyfuncModel())
