"""Serve ``din-train/amazon`` with a short interval schedule (a helper process of the tests).

Usage: python _interval_serve.py SECONDS SOURCE CONFIG_FILE. The deployment is the
project's own (its default parameters, ``skip_unchanged`` included) with the source
and config pointed at the test's files; PREFECT_API_URL, MLFLOW_TRACKING_URI and the
roots come from the environment. Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import sys
from datetime import timedelta


def main(seconds: str, source: str, config_file: str) -> None:
    from prefect import serve
    from prefect.deployments.runner import EntrypointType

    from flows.deployments import deployment_parameters
    from flows.runtime import apply_prefect_defaults
    from flows.train_flow import din_train

    apply_prefect_defaults()
    parameters = deployment_parameters("amazon")
    parameters.update(source=source, config_file=config_file, model="din", seed=3)
    deployment = din_train.to_deployment(
        name="amazon-interval",
        interval=timedelta(seconds=float(seconds)),
        parameters=parameters,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    serve(deployment, limit=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
