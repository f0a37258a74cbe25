"""Helpers shared by the pipeline commands (this module adds no command itself)."""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from din_model.config.overrides import add_override_argument
from din_model.registry import REGULARIZER_NAMES, dataset_names, model_names

MODELS = model_names()
REGULARIZERS = REGULARIZER_NAMES


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument(
        "--source",
        default="auto",
        help="folder with the raw files, 'synthetic' (Amazon-format data from `din synth`) or "
        "'auto' (data/raw/<dataset> if present, else synthetic); default auto",
    )
    add_override_argument(
        parser, "config override, as for `din train` (repeatable), e.g. train.epochs=2"
    )
    parser.add_argument("--config", dest="config_file", help="a YAML config file or preset name")
    parser.add_argument("--max-len", type=int, help="history length of the prepared samples")
    parser.add_argument(
        "--synthetic-scale",
        type=float,
        default=None,
        help="scale of generated data for source synthetic/auto (default 0.01 x Electronics)",
    )
    parser.add_argument("--work-dir", help="caches and run folders (default outputs/pipeline)")


def add_regularizer_argument(parser: argparse.ArgumentParser, default: str = "none") -> None:
    """``--regularizer`` (alias ``--reg``): the flow's and the deployments' parameter name."""
    parser.add_argument(
        "--regularizer",
        "--reg",
        dest="regularizer",
        default=default,
        choices=REGULARIZERS,
        help=f"regulariser (default {default}); the parameter `regularizer` of the flow",
    )


@contextmanager
def prefect_session() -> Iterator[str]:
    """A Prefect API for the flows this command runs in-process; yields its URL.

    The configured ``PREFECT_API_URL`` (environment or Prefect profile) when
    set, with a clear stop when nothing answers there; otherwise a temporary
    server started and owned by this process, which dies with it even on
    SIGKILL (:func:`flows.server.temporary_server`), where Prefect's own
    temporary server would be orphaned. SIGTERM ends the command through its
    ``finally`` blocks (:func:`flows.runtime.exit_on_sigterm`).
    """
    from din_model.errors import ConfigError
    from flows.runtime import apply_prefect_defaults, exit_on_sigterm, server_healthy

    apply_prefect_defaults()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    from flows.server import temporary_server

    url = PREFECT_API_URL.value()
    if url:
        if not server_healthy(url):
            raise ConfigError(
                f"PREFECT_API_URL is {url} but no Prefect server answers there. Start it "
                "(`prefect server start --host 127.0.0.1`) or unset PREFECT_API_URL to run on "
                "a temporary local server."
            )
        with exit_on_sigterm():
            yield url
        return
    timeout = float(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
    with (
        exit_on_sigterm(),
        temporary_server(timeout) as url,
        temporary_settings(updates={PREFECT_API_URL: url}),
    ):
        try:
            yield url
        finally:
            send_queued_logs_and_events()


FLUSH_TIMEOUT_S = 10.0


def send_queued_logs_and_events(timeout: float = FLUSH_TIMEOUT_S) -> None:
    """Deliver what Prefect's background workers still hold, while the server still answers.

    Otherwise they flush at interpreter exit, after the temporary server is
    gone, and retry for over a minute ("Error logging to API").
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=timeout, at_exit=False)


def _fmt(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "   n/a" if math.isnan(float(value)) else f"{float(value):.4f}"
    return str(value)


def results_table(summary: dict[str, Any]) -> str:
    """The human summary of one din-train run."""
    valid, test = summary.get("valid", {}), summary.get("test", {})
    lines = [
        f"din-train {summary['dataset']} / {summary['model']} (regulariser "
        f"{summary['regularizer']}), seed {summary['seed']}",
        f"data: {summary['source']} ({summary['data_source']}, {summary['data_fingerprint']})",
        "",
        f"{'':8}{'AUC':>8}{'GAUC':>8}{'LogLoss':>9}",
        f"{'valid':8}{_fmt(valid.get('auc')):>8}{_fmt(valid.get('gauc')):>8}"
        f"{_fmt(valid.get('logloss')):>9}   (best epoch {summary.get('best_epoch')})",
        f"{'test':8}{_fmt(test.get('auc')):>8}{_fmt(test.get('gauc')):>8}"
        f"{_fmt(test.get('logloss')):>9}   ({test.get('gauc_users', '?')} users in GAUC)",
        "",
    ]
    registry = summary.get("registry") or {}
    if registry.get("registered_model"):
        status = "champion" if registry.get("promoted") else "not promoted"
        lines.append(
            f"model: {registry['registered_model']} v{registry.get('version')} - {status}: "
            f"{registry.get('decision')}"
        )
        h2h = registry.get("h2h")
        if h2h:
            lines.append(
                f"head to head: challenger GAUC {_fmt(h2h['challenger_gauc'])} vs champion "
                f"v{registry.get('champion_version')} {_fmt(h2h['champion_gauc'])}, difference "
                f"{h2h['gauc_diff']:+.4f} [{h2h['gauc_diff_low']:+.4f}, "
                f"{h2h['gauc_diff_high']:+.4f}] over {int(h2h['h2h_users'])} users"
            )
    lines.append(f"MLflow run {summary['run_id']} in {summary['tracking_uri']}")
    return "\n".join(lines)


def ui_hint(summary: dict[str, Any]) -> str:
    from tasks.store import experiment_url

    experiment = summary.get("experiment_id")
    url = "http://127.0.0.1:5000"
    if experiment is not None:
        url = experiment_url(experiment, summary["run_id"])
    return f"Open the MLflow UI:  .venv/bin/din ui   (or: make ui), then {url}"
