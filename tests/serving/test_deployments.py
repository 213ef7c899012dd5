"""Deployments through the running service: shadow, sticky canary, promote and rollback calls, hot swaps under
traffic on a real uvicorn server, and a failed model load that leaves the champion serving."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from registered import flip_weight_signs
from served import KeyFactory, jpeg, running_service, wait_for_log

from autoinspect.config import Settings
from autoinspect.registry.aliases import CHALLENGER, CHAMPION, promote
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.serving.app import create_app
from autoinspect.store import PredictionEntry, Route, Scope


def _entries(settings: Settings, count: int) -> list[PredictionEntry]:
    now = datetime.now(UTC)
    return wait_for_log(settings, count).between(now - timedelta(hours=1), now + timedelta(hours=1))


def _inspect(client: TestClient | httpx.Client, key: str, *, vehicle: str | None = None) -> dict[str, object]:
    data = {"vehicle_id": vehicle} if vehicle else None
    response = client.post(
        "/v1/inspect", files={"image": ("car.jpg", jpeg(red=True))}, data=data, headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_admin_calls_need_the_admin_scope(client: TestClient, make_key: KeyFactory) -> None:
    inspect_key = make_key(Scope.INSPECT)
    response = client.post("/v1/admin/rollback", json={}, headers={"X-API-Key": inspect_key})
    assert response.status_code == 403 and "admin" in response.json()["detail"]
    assert client.get("/v1/deployment", headers={"X-API-Key": inspect_key}).json()["champion"] == 1


def test_shadow_logs_the_challenger_and_returns_the_champion(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    admin, key = {"X-API-Key": make_key(Scope.ADMIN)}, make_key(Scope.INSPECT)
    assert (
        client.put("/v1/admin/deployment", json={"mode": "shadow"}, headers=admin).status_code == 409
    )  # no challenger
    assert client.post("/v1/admin/challenger", json={"version": 2}, headers=admin).status_code == 200
    state = client.put("/v1/admin/deployment", json={"mode": "shadow", "reason": "dry run"}, headers=admin).json()
    assert (state["mode"], state["champion"], state["challenger"]) == ("shadow", 1, 2)
    answers = [_inspect(client, key) for _ in range(4)]
    assert {(a["model_version"], a["route"]) for a in answers} == {("1", "champion")}
    entries = _entries(registry, 8)
    shadows = [e for e in entries if e.route is Route.SHADOW]
    assert {e.request_id for e in shadows} == {f"{a['request_id']}:shadow" for a in answers}
    assert {e.model_version for e in shadows} == {"2"} and all(e.verdict == ["dent", "scratch"] for e in shadows)


def test_canary_is_sticky_by_vehicle_and_splits_the_fleet(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    admin, key = {"X-API-Key": make_key(Scope.ADMIN)}, make_key(Scope.INSPECT)
    client.post("/v1/admin/challenger", json={"version": 2}, headers=admin)
    client.put("/v1/admin/deployment", json={"mode": "canary", "canary_percent": 50}, headers=admin)
    versions: dict[str, set[object]] = {}
    for vehicle in (f"VIN{i}" for i in range(30)):
        for _ in range(2):
            answer = _inspect(client, key, vehicle=vehicle)
            versions.setdefault(vehicle, set()).add((answer["model_version"], answer["route"]))
    assert all(len(seen) == 1 for seen in versions.values())  # every photo of a vehicle on the same side
    assert {next(iter(seen)) for seen in versions.values()} == {("1", "champion"), ("2", "challenger")}
    logged = {(e.model_version, e.route) for e in _entries(registry, 60)}
    assert logged == {("1", Route.CHAMPION), ("2", Route.CHALLENGER)}


def test_promote_and_rollback_are_one_call_each(client: TestClient, make_key: KeyFactory) -> None:
    admin, key = {"X-API-Key": make_key(Scope.ADMIN)}, make_key(Scope.INSPECT)
    assert client.post("/v1/admin/rollback", json={}, headers=admin).status_code == 409  # nothing to roll back to
    assert (
        client.post("/v1/admin/promote", json={"version": 2, "reason": "better"}, headers=admin).json()["champion"] == 2
    )
    assert _inspect(client, key)["model_version"] == "2"
    assert client.post("/v1/admin/rollback", json={"reason": "false alarms"}, headers=admin).json()["champion"] == 1
    assert _inspect(client, key)["model_version"] == "1"
    assert client.post("/v1/admin/promote", json={"version": 9}, headers=admin).status_code == 409


def test_a_version_that_cannot_be_served_is_refused_and_the_registry_left_as_it_was(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    admin, key = {"X-API-Key": make_key(Scope.ADMIN)}, make_key(Scope.INSPECT)
    assert flip_weight_signs(registry, version=2) == 1  # tampered in the artifact store after registration
    response = client.post("/v1/admin/promote", json={"version": 2, "reason": "better"}, headers=admin)
    detail = response.json()["detail"]
    assert response.status_code == 502 and "version 2 cannot be served" in detail and "not changed" in detail
    assert "SHA-256 mismatch" in detail
    assert _champion(registry) == 1 and _inspect(client, key)["model_version"] == "1"

    assert client.post("/v1/admin/challenger", json={"version": 2}, headers=admin).status_code == 502
    assert get_by_alias(registry, CHALLENGER) is None


def test_a_rollback_to_a_version_that_cannot_be_served_fails_and_changes_nothing(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    admin, key = {"X-API-Key": make_key(Scope.ADMIN)}, make_key(Scope.INSPECT)
    assert client.post("/v1/admin/promote", json={"version": 2}, headers=admin).json()["champion"] == 2
    flip_weight_signs(registry, version=1)
    response = client.post("/v1/admin/rollback", json={"reason": "false alarms"}, headers=admin)
    assert response.status_code == 502 and "version 1 cannot be served" in response.json()["detail"]
    assert _champion(registry) == 2 and _inspect(client, key)["model_version"] == "2"
    assert client.get("/readyz").json()["champion"] == 2


def test_a_replica_that_cannot_load_the_champion_serves_the_last_version_it_loaded(
    registry: Settings, make_key: KeyFactory
) -> None:
    with TestClient(create_app(registry)):
        pass  # served version 1 once
    promote(registry, 2, "promoted by another replica while this one was down")
    flip_weight_signs(registry, version=2)
    with TestClient(create_app(registry)) as client:
        ready = client.get("/readyz").json()
        assert ready["ready"] and ready["champion"] == 1 and "version 1, the last that loaded" in ready["detail"]
        assert _inspect(client, make_key())["model_version"] == "1"
        assert "autoinspect_fallback_version 1.0" in client.get("/metrics").text
        assert _champion(registry) == 2  # the registry is not rewritten: the champion is still tried


def _champion(settings: Settings) -> int | None:
    champion = get_by_alias(settings, CHAMPION)
    return champion.version if champion else None


@pytest.fixture
def server(registry: Settings) -> Iterator[str]:
    with running_service(registry) as url:
        yield url


def test_hot_swaps_under_traffic_drop_no_request(server: str, make_key: KeyFactory, registry: Settings) -> None:
    """Four clients send photos non-stop while the champion moves twice: once by another replica's promotion
    (picked up by polling) and once by a rollback call to this replica. Every request succeeds and is logged."""
    key, admin = make_key(Scope.INSPECT), make_key(Scope.ADMIN)
    stop = threading.Event()
    seen: list[list[str]] = [[] for _ in range(4)]
    failures: list[str] = []

    def traffic(index: int) -> None:
        with httpx.Client(base_url=server, timeout=30) as http:
            while not stop.is_set():
                try:
                    seen[index].append(str(_inspect(http, key)["model_version"]))
                except (AssertionError, httpx.HTTPError) as error:
                    failures.append(repr(error))

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait_until(lambda: all(len(s) >= 3 for s in seen))
        promote(registry, 2, "promoted elsewhere")  # like the CLI or another replica: this one must poll
        _wait_until(lambda: all(s[-1:] == ["2"] for s in seen))
        with httpx.Client(base_url=server) as http:
            rolled = http.post("/v1/admin/rollback", json={"reason": "test"}, headers={"X-API-Key": admin})
        assert rolled.json()["champion"] == 1
        _wait_until(lambda: all(s[-1:] == ["1"] for s in seen))
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    for versions in seen:  # each client saw v1, then v2, then v1 again: no flapping between replicas' models
        collapsed = [v for i, v in enumerate(versions) if i == 0 or versions[i - 1] != v]
        assert collapsed == ["1", "2", "1"]
    assert wait_for_log(registry, sum(map(len, seen))).count() == sum(map(len, seen))


def _wait_until(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_admin_bodies_refuse_booleans_for_numbers(client: TestClient, make_key: KeyFactory) -> None:
    """Found by the fuzz test: ``true`` was read as 1 (a 1 % canary, or version 1) and answered 200."""
    admin = {"X-API-Key": make_key(Scope.ADMIN)}
    bad = [
        ("PUT", "/v1/admin/deployment", {"mode": "canary", "canary_percent": True}),
        ("POST", "/v1/admin/promote", {"version": True}),
        ("POST", "/v1/admin/challenger", {"version": False}),
    ]
    for method, path, body in bad:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 422, (path, response.text)
    fine = client.put("/v1/admin/deployment", json={"mode": "single", "canary_percent": 0}, headers=admin)
    assert fine.status_code == 200 and fine.json()["canary_percent"] == 0.0  # an integer is still a number
