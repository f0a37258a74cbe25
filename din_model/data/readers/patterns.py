"""Regular expressions that pull one field's source text out of a JSON or Python-literal line.

They run vectorised (polars, Rust regex, linear time) over millions of lines, so
a reader can look at a single field (an Amazon ``asin``, a ``categories`` list)
without parsing whole records. They are deliberately strict: a value they do
not match is handed to a full parser, never guessed.
"""

from __future__ import annotations

import re

import polars as pl

# A single- or double-quoted string literal, escapes included (JSON strings are a subset).
STRING_LITERAL = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""
# A list of string literals, and a list of such lists (Amazon 2014 ``categories``).
STRING_LIST = rf"\[\s*(?:{STRING_LITERAL}\s*(?:,\s*{STRING_LITERAL}\s*)*,?\s*)?\]"
STRING_LIST_LIST = rf"\[\s*(?:{STRING_LIST}\s*(?:,\s*{STRING_LIST}\s*)*,?\s*)?\]"
# A whole record on one line: starts with "{" and ends with "}".
FRAMED_RECORD = r"^\s*\{.*\}\s*$"


def key_prefix(key: str) -> str:
    """Regex for a top-level-looking key: at the record's start or after a comma, then a colon."""
    quoted = re.escape(key)
    return rf"""(?:^\s*\{{|,)\s*(?:'{quoted}'|"{quoted}")\s*:\s*"""


def has_key(text: pl.Expr, key: str) -> pl.Expr:
    """True where the line contains ``key`` as a record key."""
    return text.str.contains(key_prefix(key))


def value_source(text: pl.Expr, key: str, value_pattern: str) -> pl.Expr:
    """The source text of ``key``'s value when it matches ``value_pattern``; else null."""
    return text.str.extract(key_prefix(key) + f"({value_pattern})", 1)


def plain_string_value(text: pl.Expr, key: str) -> pl.Expr:
    """The content of ``key``'s string value when it has no escapes (ids such as an asin).

    Cheap enough for every line of a large file: no literal decoding at all.
    Null where the key is absent or its value is not a plain quoted string.
    """
    groups = text.str.extract_groups(
        key_prefix(key) + r"""(?:'(?P<single>[^'\\]*)'|"(?P<double>[^"\\]*)")"""
    )
    return pl.coalesce(groups.struct.field("single"), groups.struct.field("double"))
