"""Prefect tasks around ``din_model`` plus all MLflow logging.

``din_model`` knows nothing about orchestration or tracking; this package is
the seam, one concern per module, so that the flows in ``flows/`` read as a
list of steps.

Prefect tasks:
- :mod:`tasks.data`: source resolution, ingestion, validation, feature groups
  (cached on data fingerprints, retried on I/O); keys in :mod:`tasks.caching`.
- :mod:`tasks.training`: the fit-and-score step (``din_model.pipeline.fit_and_score``).
- :mod:`tasks.run_logging`: the MLflow steps of a run: log its output layout, register.

Run lifecycle (no run stays RUNNING after an error, a signal or a kill):
- :mod:`tasks.run_lifecycle`: ``tracked_run``, the one place runs are opened and ended.
- :mod:`tasks.open_runs`: the runs this process has open, ended together on SIGTERM/SIGINT.
- :mod:`tasks.process_identity`, :mod:`tasks.run_reaper`: ``din.host``/``din.pid`` tags,
  and KILLED for the runs of dead processes.
- :mod:`tasks.file_lock`: the lock that serialises a fresh sqlite store's creation.
- :mod:`tasks.allowed_paths`: the roots a deployment run's paths must lie under.

MLflow and helpers:
- :mod:`tasks.store`: where the MLflow store lives; one experiment per dataset.
- :mod:`tasks.tracking`: params, tags, metrics and artifacts by explicit run id.
- :mod:`tasks.model_logging`, :mod:`tasks.pyfunc_definition` (around
  :mod:`din_model.serving.raw_scorer`): the registered pyfunc model, which takes
  raw requests.
- :mod:`tasks.registry`: ``din-<dataset>`` and the ``champion`` rule.
- :mod:`tasks.reproduce`: what ``din rerun`` reads and checks.
- :mod:`tasks.plots`, :mod:`tasks.comparison`: figures and the ablation table.
- :mod:`tasks.git_info`, :mod:`tasks.paths`: code version and folders.

Importing this package itself is cheap: the submodules load Prefect and MLflow.
"""
