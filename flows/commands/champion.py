"""``din champion``: the champion alias of ``din-<dataset>``, its history, and moving it by hand.

    din champion --dataset amazon                      # history table + current champion
    din champion --dataset amazon --set 3 --reason "v4 mis-ranks new users"

Every move of the alias (first champion, promotion by a retrain, a move by hand) is
recorded on the registered model (tags ``champion.NNNNNN``, :mod:`tasks.champion_history`).
``--set`` takes the same lock as a retrain's judge-and-move, so it never interleaves
with one, and is recorded as kind ``rollback`` with its reason and user.
"""

from __future__ import annotations

import argparse

from din_model.registry import dataset_names

COLUMNS = ("time", "version", "previous", "kind", "reason", "run")
DEFAULT_REASON = "set by hand with `din champion --set`"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "champion",
        help="show the champion alias history of din-<dataset>, or move the alias (rollback)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, choices=dataset_names())
    parser.add_argument("--set", dest="set_version", metavar="VERSION",
                        help="move the champion alias to this registered version")  # fmt: skip
    parser.add_argument("--reason", help=f"why (recorded with --set; default: {DEFAULT_REASON})")
    parser.set_defaults(handler=run_champion)


def history_rows(entries: list[dict]) -> list[tuple[str, ...]]:
    """One row of strings per recorded move, in :data:`COLUMNS` order."""

    def text(value: object) -> str:
        return "-" if value in (None, "") else str(value)

    return [
        (text(e.get("time")), text(e.get("version") and f"v{e['version']}"),
         text(e.get("previous") and f"v{e['previous']}"), text(e.get("kind")),
         text(e.get("reason")), text(e.get("run_id")))
        for e in entries
    ]  # fmt: skip


def format_table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column (run) is left unpadded."""
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths[:-1], strict=True))
        + "  " + row[-1]
        for row in table
    )  # fmt: skip


def run_champion(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from din_model.errors import ConfigError
    from tasks.champion_history import alias_history, set_champion
    from tasks.model_source import open_store
    from tasks.registry import current_champion, registered_model_name

    open_store()
    name = registered_model_name(args.dataset)
    client = MlflowClient()
    try:
        client.get_registered_model(name)
    except MlflowException:
        raise ConfigError(
            f"no registered model {name!r} in this store: train and register a model first "
            f"(`din run --dataset {args.dataset}`)"
        ) from None
    if args.reason is not None and args.set_version is None:
        raise ConfigError("--reason: only with --set VERSION (it records why the alias moved)")
    if args.set_version is not None:
        outcome = set_champion(name, args.set_version, args.reason or DEFAULT_REASON)
        if not outcome["moved"]:
            print(f"{name}: v{outcome['version']} already holds the champion alias")
            return 0
        previous = f"v{outcome['previous']}" if outcome["previous"] else "none"
        print(f"{name}: champion alias moved from {previous} to v{outcome['version']} "
              f"({outcome['reason']})")  # fmt: skip
        return 0
    entries = alias_history(name)
    if entries:
        print(format_table(history_rows(entries)))
    else:
        print(f"{name}: no recorded moves of the champion alias (moves are recorded since "
              "the head-to-head rule)")  # fmt: skip
    current = current_champion(client, name)
    if current is None:
        print(f"current champion: none ({name} has versions but no alias)")
    else:
        print(f"current champion: {name} v{current.version} (run {current.run_id})")
    return 0
