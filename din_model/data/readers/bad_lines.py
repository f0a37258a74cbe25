"""What happens to a line of a raw file that cannot be read: the ``on_bad_lines`` policy.

Real downloads contain the odd broken line (a truncated record, a stray quote, a
timestamp that is not a number). A user chooses between two behaviours:

``"error"`` (the default)
    stop at the first bad line with a :class:`~din_model.errors.DataError` that
    names the file, the 1-based line, the column and what was expected;
``"skip"``
    drop every bad line, write it to ``<rejects_dir>/<file name>.rejects.jsonl``
    (one JSON object per line: ``line`` (1-based), ``column``, ``reason``,
    ``got``, ``text``) and count it in the ingest report, so that nothing is
    lost silently.

Readers find bad lines with vectorised checks (a boolean mask over a frame that
carries a 0-based ``line`` column), so one policy object serves every reader
without per-row Python in the hot path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, get_args

import polars as pl

from din_model.errors import ConfigError, DataError
from din_model.io.atomic import atomic_output_file

logger = logging.getLogger(__name__)

OnBadLines = Literal["error", "skip"]
ON_BAD_LINES_CHOICES: tuple[str, ...] = get_args(OnBadLines)

_REJECT_SCHEMA: dict[str, pl.DataType] = {
    "line": pl.Int64(),
    "column": pl.String(),
    "reason": pl.String(),
    "got": pl.String(),
    "text": pl.String(),
}


MISSING = "nothing (missing or null)"


def quoted_value(value: pl.Expr) -> pl.Expr:
    """Render found values for messages: 'abc' in quotes, or ``MISSING`` where null.

    Built with ``concat_str``, not ``pl.format``: polars 2.1's ``format`` panics
    on a filtered string column made of several chunks (found by a review).
    """
    quoted = pl.concat_str(pl.lit("'"), value.cast(pl.String), pl.lit("'"))
    return pl.when(value.is_null()).then(pl.lit(MISSING)).otherwise(quoted)


def problems_frame(rows: list[tuple[int, str, str | None, str | None, str | None]]) -> pl.DataFrame:
    """Rows (line, expected, column, got, text) as input of :meth:`BadLines.reject_problems`."""
    return pl.DataFrame(
        rows,
        schema={
            "line": pl.Int64,
            "expected": pl.String,
            "column": pl.String,
            "got": pl.String,
            "text": pl.String,
        },
        orient="row",
    )


class BadLines:
    """The bad lines found in one source file, handled under its policy.

    A reader calls :meth:`reject` with a mask of bad rows; under ``"error"`` the
    first bad row (lowest line) raises, under ``"skip"`` the rows are recorded
    and removed from the returned frame.
    """

    def __init__(self, path: Path, mode: OnBadLines) -> None:
        self.path = Path(path)
        self.mode = mode
        self._records: list[pl.DataFrame] = []

    @property
    def count(self) -> int:
        """Number of lines rejected so far (a line rejected twice counts once)."""
        if not self._records:
            return 0
        return pl.concat(self._records)["line"].n_unique()

    def reject(
        self,
        frame: pl.DataFrame,
        mask: pl.Expr | pl.Series,
        *,
        expected: str,
        column: str | None = None,
        got: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Handle the rows of ``frame`` where ``mask`` is true; return the other rows.

        ``frame`` must have the 0-based ``line`` column and may have the raw
        ``text``; ``got`` renders what was found (default: the quoted value of
        ``column``).
        """
        if isinstance(mask, pl.Series):
            flags = mask.fill_null(False)
        else:
            flags = frame.select(mask.fill_null(False)).to_series()
        if not flags.any():
            return frame
        if got is None:
            got = quoted_value(pl.col(column)) if column is not None else pl.lit(None, pl.String)
        text = pl.col("text") if "text" in frame.columns else pl.lit(None, dtype=pl.String)
        self.reject_problems(
            frame.filter(flags).select(
                pl.col("line").cast(pl.Int64),
                pl.lit(expected, dtype=pl.String).alias("expected"),
                pl.lit(column, dtype=pl.String).alias("column"),
                got.cast(pl.String).alias("got"),
                text.cast(pl.String).alias("text"),
            )
        )
        return frame.filter(~flags)

    def reject_problems(self, problems: pl.DataFrame) -> None:
        """Handle bad lines described row by row.

        ``problems`` has ``line`` (0-based), ``expected``, ``column``, ``got`` and
        ``text`` (the last three may be null); per-line scans build it in one go.
        """
        if problems.is_empty():
            return
        problems = problems.sort("line", maintain_order=True)
        if self.mode == "error":
            first = problems.row(0, named=True)
            raise DataError(
                self.path,
                first["expected"],
                line=int(first["line"]) + 1,
                column=first["column"],
                got=first["got"],
            )
        self._records.append(
            problems.select(
                (pl.col("line") + 1).cast(pl.Int64),
                pl.col("column").cast(pl.String),
                ("expected " + pl.col("expected")).cast(pl.String).alias("reason"),
                pl.col("got").cast(pl.String),
                pl.col("text").cast(pl.String),
            )
        )
        first = problems.row(0, named=True)
        logger.warning(
            "%s: skipping %d bad line(s), first at line %d (expected %s)",
            self.path.name,
            problems.height,
            int(first["line"]) + 1,
            first["expected"],
        )

    def rejects_frame(self) -> pl.DataFrame:
        """All recorded bad lines, one row per (line, problem), sorted by line."""
        if not self._records:
            return pl.DataFrame(schema=_REJECT_SCHEMA)
        return pl.concat(self._records).sort("line", maintain_order=True)

    def fill_missing_texts(self) -> pl.DataFrame:
        """Rejects with the raw text of every line, read back from the file where unknown.

        Fast readers do not keep the raw text; it is fetched here, once, only
        for the few lines that were rejected.
        """
        # imported here because the readers themselves depend on this module
        from din_model.data.readers.lines import read_text_lines

        rejects = self.rejects_frame()
        if rejects.is_empty() or rejects["text"].null_count() == 0:
            return rejects
        wanted = rejects.filter(pl.col("text").is_null())["line"] - 1
        texts = (
            read_text_lines(self.path, keep_blank=True, bad=None)
            .filter(pl.col("line").is_in(wanted.implode()))
            .select((pl.col("line") + 1).alias("line"), pl.col("text").alias("raw"))
        )
        return (
            rejects.join(texts, on="line", how="left", maintain_order="left")
            .with_columns(pl.coalesce("text", "raw").alias("text"))
            .drop("raw")
        )


class BadLinePolicy:
    """The ``on_bad_lines`` choice for one ingest run, shared by every file it reads."""

    def __init__(self, mode: str = "error", rejects_dir: str | Path | None = None) -> None:
        if mode not in ON_BAD_LINES_CHOICES:
            raise ConfigError(
                f"on_bad_lines must be one of {', '.join(ON_BAD_LINES_CHOICES)}, got {mode!r}"
            )
        if mode == "skip" and rejects_dir is None:
            raise ConfigError(
                "on_bad_lines='skip' needs a rejects directory to keep the skipped lines in "
                "(rejects_dir)"
            )
        self.mode: OnBadLines = mode  # type: ignore[assignment]
        self.rejects_dir = Path(rejects_dir) if rejects_dir is not None else None
        self._files: dict[Path, BadLines] = {}

    def for_file(self, path: Path) -> BadLines:
        """The bad-line record of ``path`` (one per file, created on first use)."""
        path = Path(path)
        if path not in self._files:
            self._files[path] = BadLines(path, self.mode)
        return self._files[path]

    @property
    def total(self) -> int:
        return sum(record.count for record in self._files.values())

    def rejects_path(self, path: Path) -> Path:
        assert self.rejects_dir is not None
        return self.rejects_dir / f"{Path(path).name}.rejects.jsonl"

    def write_rejects(self) -> list[Path]:
        """Write one rejects file per source file with bad lines; return their paths."""
        written = []
        for path, record in self._files.items():
            if record.count == 0 or self.rejects_dir is None:
                continue
            target = self.rejects_path(path)
            with atomic_output_file(target) as tmp:
                record.fill_missing_texts().write_ndjson(tmp)
            written.append(target)
            logger.warning("%d bad line(s) of %s written to %s", record.count, path.name, target)
        return written

    def summary(self) -> dict[str, object]:
        """Counts for the ingest report: total and per file (by file name)."""
        return {
            "on_bad_lines": self.mode,
            "rejected_lines": self.total,
            "rejected_lines_by_file": {
                path.name: record.count for path, record in self._files.items()
            },
        }
