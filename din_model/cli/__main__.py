"""``python -m din_model.cli``: the din_model commands alone."""

import sys

from din_model.cli._main import run

sys.exit(run(None, ["din_model.cli"]))
