"""API-key checks for the service's routes, as FastAPI dependencies that also document the schemes in OpenAPI.

A route declares what it needs with ``Depends(require_scope(Scope.INSPECT))`` and gets the verified
:class:`~autoinspect.store.ApiKey` back, so it can log who acted. Keys are read from the ``X-API-Key`` header or
from ``Authorization: Bearer``: the first is what curl users expect, the second what HTTP client libraries and
API gateways send without configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from autoinspect.errors import ConfigError
from autoinspect.store import ApiKey, ApiKeys, Scope

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
MISSING_KEY = f"missing API key: send it in the {API_KEY_HEADER} header"
INVALID_KEY = "invalid or revoked API key"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
"""HTTP requires a challenge on every 401; ``Bearer`` is the scheme clients know how to answer."""

# auto_error=False on both: either header may carry the key, so a missing one is not yet an error, and the 401
# below is the same whichever the client tried. As Security dependencies they appear in OpenAPI and /docs.
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="An AutoInspect API key (aik_...).")
_bearer = HTTPBearer(auto_error=False, description="The same API key, as Authorization: Bearer aik_...")


def require_scope(scope: Scope | None) -> Callable[..., ApiKey]:
    """A dependency that lets a request through only with an active key allowing ``scope`` (any active key when
    ``None``), and returns that key.

    The key store comes from ``request.app.state.api_keys`` (an :class:`~autoinspect.store.ApiKeys`), so one app
    object can be tested against its own database. The dependency is a plain ``def``: verification queries the
    database, and FastAPI runs sync dependencies in its thread pool instead of blocking the event loop.

    Example:
        >>> from fastapi import Depends, FastAPI
        >>> app = FastAPI()
        >>> @app.post("/inspect")
        ... def inspect(key: ApiKey = Depends(require_scope(Scope.INSPECT))) -> str:
        ...     return key.name
    """

    def check_api_key(
        request: Request,
        header_token: Annotated[str | None, Security(_api_key_header)],
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> ApiKey:
        token = header_token or (bearer.credentials if bearer is not None else None)
        if not token:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=MISSING_KEY, headers=_CHALLENGE)
        key = _key_store(request).verify(token)
        if key is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=INVALID_KEY, headers=_CHALLENGE)
        if scope is not None and not key.allows(scope):
            logger.info(
                "API key %s (%s) refused %s %s: lacks %s",
                key.key_id,
                key.name,
                request.method,
                request.url.path,
                scope.value,
            )
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=f"this key lacks the '{scope.value}' scope")
        return key

    # A name per scope, so tracebacks and profiles say which scope a route required.
    check_api_key.__name__ = check_api_key.__qualname__ = f"require_{scope.value if scope else 'any'}_scope"
    return check_api_key


def _key_store(request: Request) -> ApiKeys:
    keys = getattr(request.app.state, "api_keys", None)
    if not isinstance(keys, ApiKeys):
        # A wiring mistake in the app, not the client's fault: it surfaces as a 500 and in the server log.
        raise ConfigError("app.state.api_keys must be an autoinspect.store.ApiKeys before protected routes are served")
    return keys


InspectKey = Annotated[ApiKey, Depends(require_scope(Scope.INSPECT))]
"""A route's caller with the inspect scope; its name is the inspection's author and what per-caller
review-sampling rules match."""
