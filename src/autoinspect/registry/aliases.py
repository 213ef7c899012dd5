"""Aliases that serving follows (``champion``, ``challenger``), their promotion and rollback, and the history of moves.

Where the history lives: one registered-model tag per move, keyed ``alias_history.<UTC timestamp>.<random>`` with
the move as JSON (who, when, action, alias, from -> to, reason). Tags sit next to the aliases in the same
registry, so the history needs no run, no file store and no extra table; a move adds a new key and never rewrites
an old one, so two writers cannot lose each other's entries and no tag grows without bound. Sorting the keys
gives the order of the moves.

The champion moves only through :func:`promote` and :func:`rollback`: promoting keeps the replaced champion as
``previous-champion``, the version a rollback returns to. A rollback consumes that alias, so a second rollback
is refused rather than flipping back to the model just rolled away from.

Example::

    set_alias(settings, CHALLENGER, 4, reason="gates passed")
    promote(settings, 4, reason="canary 5% for 24 h, no alerts")
    rollback(settings, reason="false alarms on clean cars doubled")
"""

from __future__ import annotations

import getpass
import logging
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.mlflow_setup import UNKNOWN
from autoinspect.registry.mlflow_registry import RegistryError, is_not_found, registry_client

logger = logging.getLogger(__name__)

CHAMPION = "champion"
"""The version serving answers with."""
CHALLENGER = "challenger"
"""The version under trial (shadow or canary)."""
PREVIOUS_CHAMPION = "previous-champion"
"""The champion a promotion replaced: where a rollback goes."""
HISTORY_TAG_PREFIX = "alias_history."

_RESERVED = (CHAMPION, PREVIOUS_CHAMPION)


class AliasAction(StrEnum):
    SET = "set"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    RETIRE = "retire"
    """The challenger was taken off trial (rejected on the online evidence): the alias is removed."""


class AliasMove(BaseModel):
    """One recorded change of an alias."""

    action: AliasAction
    alias: str
    from_version: int | None
    """Where the alias pointed before; ``None`` if it did not exist."""
    to_version: int | None
    """Where the alias points after the move; ``None`` when it was removed."""
    actor: str
    at: datetime
    reason: str


def set_alias(settings: Settings, alias: str, version: int, *, reason: str = "", actor: str | None = None) -> AliasMove:
    """Point ``alias`` (e.g. ``challenger``) at ``version`` and record the move.

    ``champion`` and ``previous-champion`` are refused here: moving them outside promote/rollback would leave
    the rollback target stale.
    """
    if alias in _RESERVED:
        raise RegistryError(f"'{alias}' moves only through promote or rollback, so the rollback target stays right")
    client = registry_client(settings)
    name = settings.tracking.model_name
    _require_version(client, name, version)
    before = _alias_version(client, name, alias)
    client.set_registered_model_alias(name, alias, str(version))
    return _record(client, name, AliasAction.SET, alias, before, version, reason, actor)


def promote(settings: Settings, version: int, reason: str, *, actor: str | None = None) -> AliasMove:
    """Make ``version`` the champion; the replaced one becomes ``previous-champion``.

    The ``challenger`` alias is removed when it pointed at the promoted version: the trial is over.
    """
    client = registry_client(settings)
    name = settings.tracking.model_name
    _require_version(client, name, version)
    current = _alias_version(client, name, CHAMPION)
    if current == version:
        raise RegistryError(f"version {version} is already the champion of '{name}'")
    client.set_registered_model_alias(name, CHAMPION, str(version))
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, str(current))
    if _alias_version(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    return _record(client, name, AliasAction.PROMOTE, CHAMPION, current, version, reason, actor)


def previous_champion(settings: Settings) -> int | None:
    """The version :func:`rollback` would make the champion now; ``None`` when there is nothing to roll back to."""
    return _alias_version(registry_client(settings), settings.tracking.model_name, PREVIOUS_CHAMPION)


def rollback(settings: Settings, reason: str, *, actor: str | None = None) -> AliasMove:
    """Move the champion back to ``previous-champion`` and consume that alias."""
    client = registry_client(settings)
    name = settings.tracking.model_name
    previous = _alias_version(client, name, PREVIOUS_CHAMPION)
    if previous is None:
        raise RegistryError(f"'{name}' has no previous champion to roll back to")
    current = _alias_version(client, name, CHAMPION)
    client.set_registered_model_alias(name, CHAMPION, str(previous))
    client.delete_registered_model_alias(name, PREVIOUS_CHAMPION)
    return _record(client, name, AliasAction.ROLLBACK, CHAMPION, current, previous, reason, actor)


def retire_challenger(settings: Settings, reason: str, *, actor: str | None = None) -> AliasMove | None:
    """Remove the ``challenger`` alias (its trial failed); ``None`` when there was none."""
    client = registry_client(settings)
    name = settings.tracking.model_name
    current = _alias_version(client, name, CHALLENGER)
    if current is None:
        return None
    client.delete_registered_model_alias(name, CHALLENGER)
    return _record(client, name, AliasAction.RETIRE, CHALLENGER, current, None, reason, actor)


def alias_history(settings: Settings) -> list[AliasMove]:
    """Every recorded move, oldest first; empty when nothing was registered yet."""
    client = registry_client(settings)
    try:
        tags = client.get_registered_model(settings.tracking.model_name).tags
    except MlflowException as exc:
        if is_not_found(exc):
            return []
        raise
    keys = sorted(key for key in tags if key.startswith(HISTORY_TAG_PREFIX))
    return [AliasMove.model_validate_json(tags[key]) for key in keys]


def _require_version(client: MlflowClient, name: str, version: int) -> None:
    try:
        client.get_model_version(name, str(version))
    except MlflowException as exc:
        if is_not_found(exc):
            raise RegistryError(f"'{name}' has no version {version}") from None
        raise


def _alias_version(client: MlflowClient, name: str, alias: str) -> int | None:
    try:
        return int(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise


def _record(
    client: MlflowClient,
    name: str,
    action: AliasAction,
    alias: str,
    before: int | None,
    after: int | None,
    reason: str,
    actor: str | None,
) -> AliasMove:
    move = AliasMove(
        action=action,
        alias=alias,
        from_version=before,
        to_version=after,
        actor=actor or current_user(),
        at=datetime.now(UTC),
        reason=reason,
    )
    key = f"{HISTORY_TAG_PREFIX}{move.at:%Y%m%dT%H%M%S%f}Z.{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, move.model_dump_json())
    logger.info("%s: %s %s v%s -> v%s (%s)", name, action.value, alias, before, after, reason)
    return move


def current_user() -> str:
    """The OS user, when the caller (UI, API) does not say who acted; containers may have none."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return UNKNOWN
