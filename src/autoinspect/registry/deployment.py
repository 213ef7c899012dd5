"""The deployment record: how serving replicas split traffic between the champion and the challenger.

The record (mode, canary percentage, who set it, why) is a registered-model tag, next to the aliases it refers
to, so one registry read gives a replica everything it needs: :func:`resolve_plan` returns the mode together with
the versions the aliases point at, taken from the same response. Every change is also kept as a history tag
(``deployment_history.<UTC timestamp>.<random>``), like the alias moves.

Modes:

- ``single``: the champion answers everything.
- ``shadow``: the champion answers; the challenger runs on a copy of every request, is logged, never returned.
- ``canary``: ``canary_percent`` of the traffic (sticky by vehicle or request id) is answered by the challenger.
- ``bluegreen``: the champion answers everything while the standby (the challenger, else the previous champion)
  stays loaded on every replica, so a promotion or a rollback switches all traffic at once, with no cold start.

Example::

    set_deployment(settings, DeploymentMode.CANARY, canary_percent=5, reason="v7 passed the gates")
    resolve_plan(settings).challenger   # -> 7
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from enum import StrEnum

from mlflow.exceptions import MlflowException
from pydantic import BaseModel, Field, ValidationError

from autoinspect.config import Settings
from autoinspect.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, current_user
from autoinspect.registry.mlflow_registry import RegistryError, is_not_found, registry_client

logger = logging.getLogger(__name__)

DEPLOYMENT_TAG = "deployment"
DEPLOYMENT_HISTORY_PREFIX = "deployment_history."


class DeploymentMode(StrEnum):
    SINGLE = "single"
    SHADOW = "shadow"
    CANARY = "canary"
    BLUEGREEN = "bluegreen"


NEEDS_CHALLENGER = frozenset({DeploymentMode.SHADOW, DeploymentMode.CANARY})
"""Modes that mean nothing without a challenger: setting them without one is refused."""


class DeploymentRecord(BaseModel):
    """What an operator decided; the versions come from the aliases, so a promotion needs no record change."""

    mode: DeploymentMode = DeploymentMode.SINGLE
    canary_percent: float = Field(0.0, ge=0.0, le=100.0)
    """Share of the traffic the challenger answers in ``canary`` mode; ignored in the other modes."""
    actor: str = ""
    at: datetime | None = None
    reason: str = ""


class DeploymentPlan(BaseModel):
    """A replica's whole routing input, read in one registry call."""

    model_config = {"frozen": True}

    mode: DeploymentMode
    canary_percent: float
    champion: int | None
    """``None`` until a first version is promoted: the replica is then not ready."""
    challenger: int | None
    """The version that shadows, takes the canary share, or stands by in blue-green; ``None`` in single mode."""

    @property
    def versions(self) -> frozenset[int]:
        """Every version this plan needs loaded."""
        return frozenset(version for version in (self.champion, self.challenger) if version is not None)


def get_deployment(settings: Settings) -> DeploymentRecord:
    """The current record; ``single`` when none was ever set (or nothing is registered yet)."""
    tags, _ = _tags_and_aliases(settings)
    return _parse_record(tags.get(DEPLOYMENT_TAG))


def resolve_plan(settings: Settings) -> DeploymentPlan:
    """The record and the alias targets from one read of the registered model."""
    tags, aliases = _tags_and_aliases(settings)
    record = _parse_record(tags.get(DEPLOYMENT_TAG))
    champion = aliases.get(CHAMPION)
    challenger = aliases.get(CHALLENGER)
    if record.mode is DeploymentMode.BLUEGREEN and challenger is None:
        challenger = aliases.get(PREVIOUS_CHAMPION)
    if record.mode is DeploymentMode.SINGLE or challenger == champion:
        challenger = None
    return DeploymentPlan(
        mode=record.mode, canary_percent=record.canary_percent, champion=champion, challenger=challenger
    )


def set_deployment(
    settings: Settings,
    mode: DeploymentMode,
    *,
    canary_percent: float = 0.0,
    reason: str = "",
    actor: str | None = None,
) -> DeploymentRecord:
    """Record a new mode (and canary share); replicas apply it on their next poll.

    Raises:
        RegistryError: ``shadow`` or ``canary`` without a ``challenger`` alias, a canary share outside (0, 100],
            or no registered model yet.
    """
    if mode is DeploymentMode.CANARY and not 0.0 < canary_percent <= 100.0:
        raise RegistryError(f"a canary needs a share of traffic in (0, 100] percent, got {canary_percent}")
    _, aliases = _tags_and_aliases(settings, must_exist=True)
    if mode in NEEDS_CHALLENGER and CHALLENGER not in aliases:
        raise RegistryError(
            f"'{mode.value}' needs a challenger: set one first (autoinspect models challenger <version>)"
        )
    record = DeploymentRecord(
        mode=mode,
        canary_percent=canary_percent if mode is DeploymentMode.CANARY else 0.0,
        actor=actor or current_user(),
        at=datetime.now(UTC),
        reason=reason,
    )
    client = registry_client(settings)
    name = settings.tracking.model_name
    payload = record.model_dump_json()
    client.set_registered_model_tag(name, DEPLOYMENT_TAG, payload)
    key = f"{DEPLOYMENT_HISTORY_PREFIX}{record.at:%Y%m%dT%H%M%S%f}Z.{uuid.uuid4().hex[:8]}"
    client.set_registered_model_tag(name, key, payload)
    logger.info("%s: deployment %s (canary %.1f%%): %s", name, mode.value, record.canary_percent, reason)
    return record


def deployment_history(settings: Settings) -> list[DeploymentRecord]:
    """Every recorded change, oldest first."""
    tags, _ = _tags_and_aliases(settings)
    return [_parse_record(tags[key]) for key in sorted(tags) if key.startswith(DEPLOYMENT_HISTORY_PREFIX)]


def _tags_and_aliases(settings: Settings, *, must_exist: bool = False) -> tuple[dict[str, str], dict[str, int]]:
    client = registry_client(settings)
    name = settings.tracking.model_name
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not is_not_found(exc):
            raise
        if must_exist:
            raise RegistryError(f"no model '{name}' is registered yet") from None
        return {}, {}
    return dict(model.tags), {alias: int(version) for alias, version in model.aliases.items()}


def _parse_record(payload: str | None) -> DeploymentRecord:
    """The stored record; a tag edited by hand into nonsense falls back to ``single`` with an error logged, so a
    typo in the registry UI cannot take every replica down."""
    if payload is None:
        return DeploymentRecord()
    try:
        return DeploymentRecord.model_validate_json(payload)
    except ValidationError:
        logger.error("deployment tag %r is not a valid record; serving the champion alone", payload)
        return DeploymentRecord()
