"""Great Expectations validation steps: canonical tables and prepared samples.

Suites live as JSON in the repository's ``expectations/`` folder; a failure
raises :class:`din_model.errors.ValidationFailed` with a readable summary.
"""

from din_model.validation.canonical import validate_canonical_tables
from din_model.validation.samples import validate_sample_splits

__all__ = ["validate_canonical_tables", "validate_sample_splits"]
