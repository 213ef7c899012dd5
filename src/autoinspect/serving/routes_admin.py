"""Deployment and registry endpoints: read the plan, set the mode, choose a challenger, promote, roll back.

Each change is written to the registry (where every replica reads it) and then applied to this replica at once,
so the caller's next request already sees it; other replicas follow within one poll interval. The acting key's
name is recorded as the actor in the registry's history.

A change that puts a version into service (promote, rollback, challenger) loads that version here first: if it
cannot be served (corrupt or tampered files, an incompatible model) the answer is a 502 with the reason and the
registry is left as it was. Should the change still fail to apply here afterwards, the answer is a 502 too, saying
what the registry now holds and what this replica serves: an admin call never reports a success it did not have.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from autoinspect.registry.aliases import CHALLENGER, previous_champion, promote, rollback, set_alias
from autoinspect.registry.deployment import set_deployment
from autoinspect.registry.mlflow_registry import ModelIntegrityError, RegisteredModel, RegistryError, list_versions
from autoinspect.serving.auth import require_scope
from autoinspect.serving.inspection import NOT_READY, NotReadyError, RequestRejectedError
from autoinspect.serving.schemas import (
    DeploymentChange,
    DeploymentState,
    ErrorBody,
    KeyIdentity,
    RollbackRequest,
    VersionChange,
)
from autoinspect.serving.service import Service, current_service
from autoinspect.store import ApiKey, Scope

logger = logging.getLogger(__name__)

router = APIRouter()

ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorBody, "description": "The key lacks the required scope"},
    409: {"model": ErrorBody, "description": "The registry refused the change (unknown version, nothing to roll back)"},
    502: {"model": ErrorBody, "description": "The version cannot be served (the registry was left unchanged)"},
    422: {"model": ErrorBody, "description": "The body does not match the schema"},
    503: {"model": ErrorBody, "description": "No champion model is loaded yet"},
}
CHANGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ADMIN_ERRORS,
    400: {"model": ErrorBody, "description": "The body cannot be parsed (not UTF-8 JSON)"},
}
"""The write endpoints read a JSON body; FastAPI answers 400 when it cannot even be decoded."""
Admin = Annotated[ApiKey, Depends(require_scope(Scope.ADMIN))]
State = Annotated[Service, Depends(current_service)]


@router.get("/v1/whoami", response_model=KeyIdentity, responses=ADMIN_ERRORS, tags=["account"])
def whoami(key: Annotated[ApiKey, Depends(require_scope(None))]) -> KeyIdentity:
    """Whose key this is and what it may do: the UI signs a person in with it and shows only what they may use."""
    return KeyIdentity(name=key.name, key_id=key.key_id, scopes=sorted(scope.value for scope in key.scopes))


@router.get(
    "/v1/deployment",
    response_model=DeploymentState,
    responses=ADMIN_ERRORS,
    tags=["deployment"],
    dependencies=[Depends(require_scope(Scope.INSPECT))],
)
def deployment(state: State) -> DeploymentState:
    """The mode and the versions this replica serves now."""
    return _state(state)


@router.put("/v1/admin/deployment", response_model=DeploymentState, responses=CHANGE_ERRORS, tags=["deployment"])
def change_deployment(change: DeploymentChange, state: State, key: Admin) -> DeploymentState:
    """Switch to single, shadow, canary (with its share) or blue-green."""
    set_deployment(
        state.settings, change.mode, canary_percent=change.canary_percent, reason=change.reason, actor=key.name
    )
    return _apply(state)


@router.post("/v1/admin/challenger", response_model=DeploymentState, responses=CHANGE_ERRORS, tags=["deployment"])
def choose_challenger(change: VersionChange, state: State, key: Admin) -> DeploymentState:
    """Make a version the challenger (what shadow, canary and blue-green put on trial)."""
    _prepare(state, change.version)
    set_alias(state.settings, CHALLENGER, change.version, reason=change.reason, actor=key.name)
    return _apply(state)


@router.post("/v1/admin/promote", response_model=DeploymentState, responses=CHANGE_ERRORS, tags=["deployment"])
def promote_version(change: VersionChange, state: State, key: Admin) -> DeploymentState:
    """Make a version the champion; the replaced one is kept for rollback."""
    _prepare(state, change.version)
    promote(state.settings, change.version, change.reason, actor=key.name)
    return _apply(state)


@router.post("/v1/admin/rollback", response_model=DeploymentState, responses=CHANGE_ERRORS, tags=["deployment"])
def rollback_champion(request: RollbackRequest, state: State, key: Admin) -> DeploymentState:
    """Put the previous champion back: one call."""
    target = previous_champion(state.settings)
    if target is not None:  # without one, the registry's refusal below says so
        _prepare(state, target)
    rollback(state.settings, request.reason, actor=key.name)
    return _apply(state)


@router.get(
    "/v1/models",
    response_model=list[RegisteredModel],
    responses=ADMIN_ERRORS,
    tags=["deployment"],
    dependencies=[Depends(require_scope(Scope.INSPECT))],
)
def models(state: State) -> list[RegisteredModel]:
    """Every registered version with its aliases, lineage and evaluation metrics."""
    return list_versions(state.settings)


def _prepare(state: Service, version: int) -> None:
    """Load ``version`` here before the registry names it; 502 with the reason when it cannot be served."""
    try:
        state.replica.prepare(version)
    except RegistryError as error:
        if not isinstance(error, ModelIntegrityError):
            raise  # no such version: the registry's own 409
        raise _unservable(version, error) from error
    except Exception as error:
        raise _unservable(version, error) from error


def _unservable(version: int, error: Exception) -> RequestRejectedError:
    logger.error("version %d cannot be served (%s); the registry change is refused", version, error)
    return RequestRejectedError(
        502, f"version {version} cannot be served ({type(error).__name__}: {error}); the registry was not changed"
    )


def _apply(state: Service) -> DeploymentState:
    """Apply the registry's new state here now (retrying versions in back-off: an operator asked); a failure is
    the answer (502), and the old models keep serving."""
    try:
        state.replica.refresh(retry_now=True)
    except Exception as error:
        logger.exception("the registry changed but this replica could not apply it yet")
        active = state.replica.active
        serving = f"it keeps serving version {active.champion.version}" if active else "it serves nothing yet"
        raise RequestRejectedError(
            502,
            f"the registry holds the change, but this replica could not apply it ({type(error).__name__}: {error});"
            f" {serving} and retries on its next poll",
        ) from error
    return _state(state)


def _state(state: Service) -> DeploymentState:
    active = state.replica.active
    if active is None:
        error = state.replica.stats.last_error
        raise NotReadyError(f"no champion model is loaded: {error}" if error else NOT_READY)
    return DeploymentState(
        mode=active.plan.mode,
        canary_percent=active.plan.canary_percent,
        champion=active.champion.version,
        challenger=active.challenger.version if active.challenger else None,
        last_refresh_error=state.replica.stats.last_error,
    )
