"""Entry point shared by ``din`` and ``python -m din_model.cli``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from din_model.cli import register_all
from din_model.errors import DinError
from din_model.io.failures import user_error_message


def build_parser(packages: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="din",
        description="Deep Interest Network CTR pipeline: prepare data, train, compare runs.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of a failure instead of a one-line message",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for package in packages:
        register_all(subparsers, package)
    return parser


def is_user_error(exc: BaseException | None) -> bool:
    """The project's own errors and the I/O failures a user can cause (see :func:`run`)."""
    if isinstance(exc, DinError):
        return True
    return isinstance(exc, Exception) and user_error_message(exc) is not None


class HideUserErrorTracebacks(logging.Filter):
    """Keep a log record's message but drop the traceback of a user error.

    Why: an engine that runs the command (Prefect's flow engine) logs every
    exception with its traceback before the CLI can print the one-line message;
    for a user error that traceback is noise. Bugs keep theirs.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and is_user_error(record.exc_info[1]):
            record.exc_info = None
            record.exc_text = None
        return True


def run(
    argv: Sequence[str] | None,
    packages: Sequence[str],
    engine_loggers: Sequence[str] = (),
) -> int:
    """Parse ``argv``, run the chosen command, turn user errors into a message and exit code 2.

    User errors are the project's :class:`DinError` and the I/O failures a user
    can cause (a missing file, a permission, a file where a folder belongs, a
    full disk), reported as one line naming the path. Anything else is a bug
    and keeps its traceback; ``--debug`` shows the traceback of every failure.
    ``engine_loggers`` are loggers that log the exceptions of the code they run
    (Prefect's flow and task run loggers): their user-error tracebacks are
    hidden too, unless ``--debug``.
    """
    try:
        # the choices come from the registries: a broken YAML on DIN_MODEL_DIRS or
        # DIN_SPEC_DIRS is a user error before any command has been chosen
        parser = build_parser(packages)
    except DinError as exc:
        if "--debug" in (argv if argv is not None else sys.argv[1:]):
            raise
        print(f"din: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not args.debug:
        for name in engine_loggers:
            logger = logging.getLogger(name)
            if not any(isinstance(f, HideUserErrorTracebacks) for f in logger.filters):
                logger.addFilter(HideUserErrorTracebacks())
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.handler(args) or 0)
    except DinError as exc:
        if args.debug:
            raise
        print(f"din {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        message = user_error_message(exc)
        if message is None or args.debug:
            raise
        print(f"din {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"din {args.command}: interrupted", file=sys.stderr)
        return 130
