"""Fuzz every operation of the running service against its own OpenAPI spec (schemathesis).

The app runs with its lifespan (champion loaded, writer and poller running) on the real red-box registry, and
every request carries an admin key, so the handlers themselves are reached, not only the key check. Each answer
must be no 5xx, a status the spec documents, and a body matching the documented schema, plus schemathesis'
other default checks (content type, headers, negative data rejected, missing auth refused).

Why not ``schemathesis.pytest.from_fixture``: with pytest 9.2 it fails before the first request (schemathesis
4.32.5 renames the test through ``Node._nodeid``, which pytest 9.2 no longer has). The schema is loaded at
import time instead, from an app that is never started, and every test points it at the app its own fixture
started; the fixture checks that the started app publishes the very spec that was fuzzed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, NegativeDataRejectionConfig
from served import KeyFactory
from starlette.types import ASGIApp, Receive, Scope, Send

from autoinspect.config import Settings
from autoinspect.serving.app import create_app
from autoinspect.store import Scope as KeyScope


class _AppUnderTest:
    """The ASGI app schemathesis calls: HTTP requests go to the app the current test started; lifespan is declined.

    The ``TestClient`` around the real app runs its lifespan and stops it when the test ends (poller stopped, log
    flushed). Schemathesis' ASGI transport would otherwise start a second lifespan on the same app, opening a
    second service, and keep it running until the interpreter exits. Returning from the lifespan scope without
    receiving a message is how an ASGI app says it has no lifespan.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.target = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return
        await self.target(scope, receive, send)


# Only /openapi.json is ever asked of this app, and the spec depends on the routes alone; model_construct reads
# no environment or YAML, so collecting the tests does not depend on the developer's configuration.
_SPEC_ONLY = create_app(Settings.model_construct())
_APP = _AppUnderTest(_SPEC_ONLY)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)
schema.config.checks.negative_data_rejection = NegativeDataRejectionConfig(
    expected_statuses=[*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
)
"""413 is a rejection too: a batch with more files than allowed is refused as soon as the extra part arrives,
before the other fields of the same invalid request are read."""


@pytest.fixture
def served(registry: Settings) -> Iterator[FastAPI]:
    """The service on the red-box registry, started with its lifespan, as the app schemathesis calls."""
    app = create_app(registry)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200, "the champion did not load"
        assert client.get("/openapi.json").json() == _SPEC_ONLY.openapi(), "the served spec is not the fuzzed one"
        _APP.target = app
        try:
            yield app
        finally:
            _APP.target = _SPEC_ONLY


@pytest.fixture
def admin_headers(make_key: KeyFactory) -> dict[str, str]:
    """An admin key allows every scope (inspect, review, admin), so no handler is hidden behind a 403."""
    return {"X-API-Key": make_key(KeyScope.ADMIN)}


_NOT_EXPRESSIBLE = {
    operation: [positive_data_acceptance]
    for operation in ("POST /v1/inspect", "POST /v1/inspect/batch", "POST /v1/inspections")
}
"""Checks left out per operation, with the reason: the spec can say "a file" or "a base64 string" but not "a
photo that decodes" (nor the configured batch and pixel limits), so a schema-valid request made of random bytes
is rightly refused with the documented 400/413/422 there. Those statuses are still checked against the spec;
test_inspect_api.py checks that real photos are accepted."""


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_every_operation_answers_as_its_spec_says(case: Any, served: FastAPI, admin_headers: dict[str, str]) -> None:
    # The three named checks are in the default set too; naming them keeps them whatever a config file disables.
    case.call_and_validate(
        headers=admin_headers,
        additional_checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
        excluded_checks=_NOT_EXPRESSIBLE.get(f"{case.operation.method.upper()} {case.operation.path}", []),
    )
