"""Models-from-code entry of the registered model: MLflow executes this file when loading.

Logging the model as code (instead of a cloudpickled object) means loading it
never unpickles Python objects; the weights travel as the ``checkpoint``
artifact and the code as ``code_paths`` (the ``din_model`` package only). This
file is copied into the model, so it holds the whole MLflow wrapper: a thin
:class:`mlflow.pyfunc.PythonModel` around :class:`din_model.serving.EncodedScorer`.
"""

import mlflow
from mlflow.pyfunc import PythonModel

from din_model.serving.encoded_scorer import CHECKPOINT_ARTIFACT, EncodedScorer


class DinPyfuncModel(PythonModel):
    """pyfunc wrapper around a trained din_model checkpoint (artifact ``checkpoint``)."""

    def load_context(self, context) -> None:
        self.scorer = EncodedScorer(context.artifacts[CHECKPOINT_ARTIFACT])

    def predict(self, context, model_input, params=None):
        """Click probability per row (float64, in input order)."""
        return self.scorer.score(model_input)


mlflow.models.set_model(DinPyfuncModel())
