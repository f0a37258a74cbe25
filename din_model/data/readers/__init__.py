"""Line-level readers of raw data files: polars frames with a 0-based ``line`` column.

Every reader keeps the physical line number of each record so that a problem
can be located as ``file:line`` (1-based in messages) and so that later stages
have a stable tie-breaker for equal timestamps. Bad lines are handed to a
:class:`~din_model.data.readers.bad_lines.BadLines` record, which raises or rejects
them according to the user's ``on_bad_lines`` choice.
"""

from din_model.data.readers.delimited import read_delimited
from din_model.data.readers.fields import (
    integer_ids_as_text,
    parse_floats,
    parse_integers,
    reject_structured,
    require_allowed,
    require_values,
)
from din_model.data.readers.json_lines import parse_json_lines, read_json_lines
from din_model.data.readers.lines import read_raw_bytes, read_text_lines, require_lines
from din_model.data.readers.python_literals import parse_dict_literal_lines
from din_model.data.readers.ranges import require_between, require_plausible_timestamps

__all__ = [
    "integer_ids_as_text",
    "parse_dict_literal_lines",
    "parse_floats",
    "parse_integers",
    "parse_json_lines",
    "read_delimited",
    "read_json_lines",
    "read_raw_bytes",
    "read_text_lines",
    "require_allowed",
    "require_between",
    "require_lines",
    "require_plausible_timestamps",
    "require_values",
    "reject_structured",
]
