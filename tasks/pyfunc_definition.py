"""Models-from-code entry of the registered model: MLflow executes this file when loading.

Logging the model as code (instead of a cloudpickled object) means loading it
never unpickles Python objects; the weights travel as the ``checkpoint``
artifact and the code as ``code_paths``.
"""

import mlflow

from tasks.pyfunc_model import DinPyfuncModel

mlflow.models.set_model(DinPyfuncModel())
