"""The FastAPI application: routes, error handling, request metrics, and the replica's lifespan.

``create_app(settings)`` is the one constructor (the CLI, the tests and ``uvicorn --factory`` all use it). Every
error leaves as ``{"detail": "<what was wrong>"}`` with a 4xx for anything the client can fix; a 500 means a bug
and is logged with its traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoinspect import __version__
from autoinspect.config import Settings, get_settings
from autoinspect.registry.mlflow_registry import RegistryError
from autoinspect.serving import routes_admin, routes_health, routes_inspect, routes_inspections, routes_review
from autoinspect.serving.inspection import NotReadyError, RequestRejectedError
from autoinspect.serving.metrics import ServiceMetrics
from autoinspect.serving.replica import ModelLoader
from autoinspect.serving.service import open_service
from autoinspect.serving.uploads import BodyLimit, first_errors

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, loader: ModelLoader | None = None) -> FastAPI:
    """The service for ``settings`` (the process settings by default); models load when the app starts."""
    settings = settings or get_settings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = open_service(settings, metrics=metrics, loader=loader)
        app.state.service = service
        app.state.api_keys = service.api_keys
        try:
            yield
        finally:
            service.close()

    # Swagger UI and ReDoc load their scripts from a CDN by default: a blank /docs on an air-gapped machine.
    app = FastAPIOffline(
        title="AutoInspect",
        version=__version__,
        summary='Scratches and dents in vehicle photos, or "None".',
        lifespan=lifespan,
    )
    modules = (routes_inspect, routes_inspections, routes_review, routes_admin, routes_health)
    routers = [module.router for module in modules]
    for router in routers:
        app.include_router(router)
    _add_error_handlers(app)
    known_paths = {getattr(route, "path", "") for router in routers for route in router.routes}
    app.add_middleware(RequestMetrics, metrics=metrics, known_paths=known_paths)
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.serving.max_upload_bytes,
        per_path={"/v1/inspections": settings.inspections.max_upload_bytes},
    )
    return app


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    async def rejected(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestRejectedError)
        return _error(error.status, error.detail)

    async def not_ready(request: Request, error: Exception) -> JSONResponse:
        return _error(503, str(error))

    async def registry(request: Request, error: Exception) -> JSONResponse:
        return _error(409, str(error))

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return _error(422, f"invalid request: {first_errors(error.errors())}")

    async def http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette lists one route's methods; a path may have several routes
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return _error(error.status_code, str(error.detail), headers)

    async def bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
        return _error(500, "internal error: the service logged it; the request was not answered")

    app.add_exception_handler(RequestRejectedError, rejected)
    app.add_exception_handler(NotReadyError, not_ready)
    app.add_exception_handler(RegistryError, registry)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, bug)


def _allowed_methods(request: Request) -> list[str]:
    """The methods of the routes declared for the path template the request's path matches first (as Starlette
    routes it): ``/v1/inspections`` has a GET and a POST route, while ``/v1/review/queue`` is not also the review
    of a request named "queue"."""
    matching = [
        route
        for route in request.app.routes
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] is not Match.NONE
    ]
    if not matching:
        return []
    template = matching[0].path
    return sorted({method for route in matching if route.path == template for method in route.methods})


class RequestMetrics:
    """Latency per endpoint and errors per status, observed around the whole app (pure ASGI, no task groups).

    Unknown paths are counted under ``other`` so a scanner cannot blow up the label set.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, known_paths: set[str]) -> None:
        self._app = app
        self._metrics = metrics
        self._known = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self._known else "other"
        status = 500
        started = time.perf_counter()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, observe)
        finally:
            self._metrics.latency.labels(path).observe(time.perf_counter() - started)
            if status >= 400:
                self._metrics.errors.labels(path, str(status)).inc()
