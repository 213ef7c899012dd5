"""API-key dependencies on a real FastAPI app and SQLite store: 401 without or with a bad key, 403 without the scope."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from autoinspect.serving.auth import require_scope
from autoinspect.store import ApiKey, ApiKeys, Scope, create_schema, make_engine


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[ApiKeys]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    yield ApiKeys(engine)
    engine.dispose()


@pytest.fixture
def client(keys: ApiKeys) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.api_keys = keys

    @app.post("/inspect")
    def inspect(key: Annotated[ApiKey, Depends(require_scope(Scope.INSPECT))]) -> dict[str, str]:
        return {"actor": key.name}

    @app.post("/admin")
    def admin(key: Annotated[ApiKey, Depends(require_scope(Scope.ADMIN))]) -> dict[str, str]:
        return {"actor": key.name}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    with TestClient(app) as test_client:
        yield test_client


def test_a_request_without_a_key_gets_401_with_a_challenge(client: TestClient) -> None:
    for path in ("/inspect", "/admin"):
        response = client.post(path)
        assert response.status_code == 401
        assert response.json() == {"detail": "missing API key: send it in the X-API-Key header"}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/inspect", headers={"X-API-Key": ""}).status_code == 401
    assert client.post("/inspect", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401
    assert client.get("/health").status_code == 200


def test_the_key_is_accepted_in_either_header(client: TestClient, keys: ApiKeys) -> None:
    issued = keys.create("line 3 camera", [Scope.INSPECT])
    for headers in ({"X-API-Key": issued.token}, {"Authorization": f"Bearer {issued.token}"}):
        response = client.post("/inspect", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {"actor": "line 3 camera"}


@pytest.mark.parametrize("token", ["aik_0badcafe_" + "a" * 43, "not a key", "ключ 🔑", "x" * 10_000])
def test_an_unknown_or_garbage_key_gets_401(client: TestClient, keys: ApiKeys, token: str) -> None:
    keys.create("ci", [Scope.ADMIN])
    # Raw UTF-8 bytes: what a misbehaving client can put on the wire, which the server reads back as latin-1.
    response = client.post("/inspect", headers={"Authorization": f"Bearer {token}".encode()})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked API key"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_key_gets_401(client: TestClient, keys: ApiKeys) -> None:
    issued = keys.create("old camera", [Scope.INSPECT])
    assert client.post("/inspect", headers={"X-API-Key": issued.token}).status_code == 200
    keys.revoke(issued.key.key_id)
    response = client.post("/inspect", headers={"X-API-Key": issued.token})
    assert response.status_code == 401
    assert response.json() == {"detail": "invalid or revoked API key"}


def test_a_key_without_the_scope_gets_403(client: TestClient, keys: ApiKeys) -> None:
    inspect = keys.create("camera", [Scope.INSPECT])
    review = keys.create("reviewer", [Scope.REVIEW])
    response = client.post("/admin", headers={"X-API-Key": inspect.token})
    assert response.status_code == 403
    assert response.json() == {"detail": "this key lacks the 'admin' scope"}
    response = client.post("/inspect", headers={"X-API-Key": review.token})
    assert response.status_code == 403
    assert response.json() == {"detail": "this key lacks the 'inspect' scope"}


def test_an_admin_key_passes_every_route(client: TestClient, keys: ApiKeys) -> None:
    admin = keys.create("ops", [Scope.ADMIN])
    for path in ("/inspect", "/admin"):
        response = client.post(path, headers={"Authorization": f"Bearer {admin.token}"})
        assert response.status_code == 200, response.text
        assert response.json() == {"actor": "ops"}


def test_openapi_lists_both_security_schemes_on_protected_routes_only(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An AutoInspect API key (aik_...).",
    }
    assert schemes["HTTPBearer"]["type"] == "http" and schemes["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/inspect", "/admin"):
        assert spec["paths"][path]["post"]["security"] == [{"APIKeyHeader": []}, {"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"]


def test_an_app_without_a_key_store_fails_loudly(keys: ApiKeys) -> None:
    app = FastAPI()

    @app.get("/inspect")
    def inspect(key: Annotated[ApiKey, Depends(require_scope(Scope.INSPECT))]) -> str:
        return key.name

    with TestClient(app, raise_server_exceptions=False) as bare:
        assert bare.get("/inspect", headers={"X-API-Key": "aik_0badcafe_" + "a" * 43}).status_code == 500
