"""Liveness, readiness and Prometheus metrics: open to the orchestrator, no key needed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from autoinspect.serving.metrics import CONTENT_TYPE
from autoinspect.serving.schemas import Health, Readiness
from autoinspect.serving.service import Service, current_service

router = APIRouter(tags=["operations"])
LOAD_ERROR_HINT = "the error is in the service log and, with an API key, in GET /v1/deployment"


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers: restart it if this fails."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(state: Annotated[Service, Depends(current_service)]) -> Response:
    """A champion is loaded: send traffic. 503 (with the reason) until then.

    Open to anyone, so the reason stays generic: a load error names files and folders of the host; callers with a
    key read it from ``GET /v1/deployment``."""
    active = state.replica.active
    if active is None:
        detail = (
            f"no champion loaded: loading it failed ({LOAD_ERROR_HINT})"
            if state.replica.stats.last_error
            else "no champion loaded: promote a registered version"
        )
        body = Readiness(ready=False, champion=None, challenger=None, mode=None, detail=detail)
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    body = Readiness(
        ready=True,
        champion=active.champion.version,
        challenger=active.challenger.version if active.challenger else None,
        mode=active.plan.mode,
        detail=(
            f"serving version {fallback}, the last that loaded: the champion does not load ({LOAD_ERROR_HINT})"
            if (fallback := state.replica.stats.fallback) is not None
            else "serving"
        ),
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(state: Annotated[Service, Depends(current_service)]) -> Response:
    """Prometheus exposition: latency histogram, answers by verdict/version/route, errors, writer, registry."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
