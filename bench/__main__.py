"""``python -m bench ...``: ``din bench`` without the pipeline (no Prefect, no MLflow)."""

import sys

from bench.cli import main

sys.exit(main())
