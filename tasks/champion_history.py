"""Every move of the ``champion`` alias, kept on the registered model, and moves by hand.

MLflow keeps only where an alias points now. To answer "which version served when,
and why" each move is also written as a registered-model tag ``champion.<NNNNNN>``
(zero-padded sequence, so the tags sort in order) whose value is JSON::

    {"time": "2026-05-01T02:00:07+00:00", "version": "4", "previous": "3",
     "reason": "...", "kind": "promote|first|rollback", "run_id": "...", "user": "..."}

The history lives in the store with the alias it explains (a copied or remote store
keeps it) and shows on the model's page of the MLflow UI. Writers hold the champion
lock (:mod:`tasks.champion_lock`), so the sequence number and the alias move together.

:func:`set_champion` is ``din champion --set``: a rollback (or roll-forward) by hand,
recorded with its reason like any other move.
"""

from __future__ import annotations

import getpass
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from din_model.errors import ConfigError
from tasks.champion_lock import champion_lock
from tasks.registry import CHAMPION_ALIAS, current_champion

logger = logging.getLogger(__name__)

HISTORY_PREFIX = "champion."
HISTORY_TAG = re.compile(r"^champion\.(\d{6})$")
ROLLBACK = "rollback"
_MAX_REASON = 4000  # a tag value holds far more; a history line should not


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _history_tags(client: Any, name: str) -> dict[int, str]:
    tags = client.get_registered_model(name).tags or {}
    found = {}
    for key, value in tags.items():
        match = HISTORY_TAG.match(key)
        if match:
            found[int(match.group(1))] = value
    return found


def record_alias_move(
    name: str,
    *,
    version: str,
    previous: str | None,
    reason: str,
    kind: str,
    run_id: str | None,
) -> None:
    """Append one move to the history of ``name`` (call it under the champion lock)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    sequence = max(_history_tags(client, name), default=0) + 1
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": str(version),
        "previous": None if previous is None else str(previous),
        "reason": reason[:_MAX_REASON],
        "kind": kind,
        "run_id": run_id,
        "user": _user(),
    }
    client.set_registered_model_tag(name, f"{HISTORY_PREFIX}{sequence:06d}", json.dumps(entry))
    logger.debug("%s: champion move %d recorded: %s", name, sequence, entry)


def alias_history(name: str) -> list[dict[str, Any]]:
    """The recorded moves of ``name``'s champion alias, oldest first (each with its ``seq``).

    A tag that is not valid JSON (edited by hand) is kept as an entry whose ``reason``
    says so, so the table still shows that something happened there.
    """
    from mlflow import MlflowClient

    entries = []
    for seq, value in sorted(_history_tags(MlflowClient(), name).items()):
        try:
            entry = json.loads(value)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            entry = {"reason": f"unreadable history tag: {value[:80]!r}", "kind": "?"}
        entries.append({"seq": seq, **entry})
    return entries


def _version_or_error(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        raise ConfigError(
            f"no registered model {name!r} in this store: train and register a model first "
            "(`din run`)"
        ) from None
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        known = sorted((v.version for v in client.search_model_versions(f"name='{name}'")), key=int)
        raise ConfigError(
            f"--set {version}: {name} has no version {version} "
            f"(versions: {', '.join(map(str, known)) or 'none'})"
        ) from None


def set_champion(name: str, version: str, reason: str) -> dict[str, Any]:
    """Move the alias of ``name`` to ``version`` by hand, under the lock, and record it.

    Returns the recorded entry (``moved`` False, nothing recorded, when ``version``
    already holds the alias). The version's ``champion_decision`` tag says who set
    it and why, so the version's page agrees with the history.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    version = str(version).strip().removeprefix("v")
    if not version.isdigit():
        raise ConfigError(f"--set {version!r}: expected a version number such as 3")
    with champion_lock(name):
        target = _version_or_error(client, name, version)
        current = current_champion(client, name)
        previous = None if current is None else str(current.version)
        if previous == str(target.version):
            return {"moved": False, "version": previous, "previous": previous, "reason": reason}
        client.set_registered_model_alias(name, CHAMPION_ALIAS, str(target.version))
        record_alias_move(
            name, version=str(target.version), previous=previous, reason=reason,
            kind=ROLLBACK, run_id=target.run_id,
        )  # fmt: skip
        tags = {
            "champion_decision": f"set by hand ({_user()}): {reason}",
            "champion_promoted": "true",
            "champion_version": previous or "",
        }
        for key, value in tags.items():
            client.set_model_version_tag(name, str(target.version), key, value)
    logger.info("%s: champion alias moved from v%s to v%s (%s)", name, previous, version, reason)
    return {"moved": True, "version": str(target.version), "previous": previous,
            "reason": reason, "kind": ROLLBACK}  # fmt: skip
