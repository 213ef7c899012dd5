"""The review endpoints on a real app: flagged answers queue up, reviews take them out, one truth per request."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from served import KeyFactory, jpeg, wait_for_log

from autoinspect.config import Settings
from autoinspect.store import Scope

DENT = {"label": "dent", "box": {"x1": 0.1, "y1": 0.2, "x2": 0.3, "y2": 0.4}}


def _inspect(client: TestClient, token: str, photo: bytes, request_id: str) -> dict[str, Any]:
    headers = {"X-API-Key": token, "X-Request-ID": request_id}
    response = client.post("/v1/inspect", files={"image": ("car.jpg", photo, "image/jpeg")}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _queue(client: TestClient, token: str) -> list[str]:
    response = client.get("/v1/review/queue", headers={"X-API-Key": token})
    assert response.status_code == 200, response.text
    return [entry["request_id"] for entry in response.json()]


def test_reviews_take_answers_out_of_the_queue_and_store_one_truth(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    inspector, reviewer = make_key(Scope.INSPECT), make_key(Scope.REVIEW)
    answers = [_inspect(client, inspector, jpeg(red=i < 3, seed=i), f"car-{i}") for i in range(4)]
    assert [a["needs_review"] for a in answers] == [True, True, True, False]
    wait_for_log(registry, 4)
    assert _queue(client, reviewer) == ["car-2", "car-1", "car-0"]  # newest first; the clean car is not there
    headers = {"X-API-Key": reviewer}

    accepted = client.post("/v1/review/car-0", json={"decision": "accept"}, headers=headers)
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["decision"] == "accepted" and body["reviewer"] == "test" and body["model_version"] == "1"
    assert [label["label"] for label in body["labels"]] == ["scratch", "dent"]  # the detections, as returned
    assert body["labels"] == [{"label": d["label"], "box": d["box"]} for d in answers[0]["detections"]]
    assert body["image_sha256"] is not None

    correction = {"decision": "correct", "labels": [DENT]}
    corrected = client.post("/v1/review/car-1", json=correction, headers=headers)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["decision"] == "corrected" and corrected.json()["labels"] == [DENT]
    assert _queue(client, reviewer) == ["car-2"]

    again = client.post("/v1/review/car-1", json=correction, headers=headers)  # a retried call
    assert again.status_code == 200 and again.json() == corrected.json()
    conflict = client.post("/v1/review/car-1", json={"decision": "accept"}, headers=headers)
    assert conflict.status_code == 409 and "already reviewed" in conflict.json()["detail"]
    none = client.post("/v1/review/car-2", json={"decision": "correct", "labels": []}, headers=headers)
    assert none.status_code == 200 and none.json()["labels"] == []  # no damage after all
    assert _queue(client, reviewer) == []


def test_review_refusals(client: TestClient, make_key: KeyFactory, registry: Settings) -> None:
    inspector, reviewer = make_key(Scope.INSPECT), make_key(Scope.REVIEW)
    _inspect(client, inspector, jpeg(red=True), "car-0")
    wait_for_log(registry, 1)
    headers = {"X-API-Key": reviewer}
    accept = {"decision": "accept"}

    assert client.post("/v1/review/car-0", json=accept).status_code == 401
    forbidden = client.post("/v1/review/car-0", json=accept, headers={"X-API-Key": inspector})
    assert forbidden.status_code == 403 and "review" in forbidden.json()["detail"]
    assert client.get("/v1/review/queue", headers={"X-API-Key": inspector}).status_code == 403
    unknown = client.post("/v1/review/never-sent", json=accept, headers=headers)
    assert unknown.status_code == 404 and "never-sent" in unknown.json()["detail"]

    for labels, expected in (
        ([{"label": "rust", "box": DENT["box"]}], "'rust' is not one of ['scratch', 'dent']"),
        ([{"label": "dent", "box": {"x1": 0.3, "y1": 0.2, "x2": 0.1, "y2": 0.4}}], "has no area"),
        ([{"label": "dent", "box": {"x1": 0.1, "y1": 0.2, "x2": 1.3, "y2": 0.4}}], "less than or equal to 1"),
    ):
        bad = client.post("/v1/review/car-0", json={"decision": "correct", "labels": labels}, headers=headers)
        assert bad.status_code == 422 and expected in bad.json()["detail"], bad.text
    for body in ({"decision": "maybe"}, {"decision": "correct"}, {"decision": "accept", "labels": []}):
        assert client.post("/v1/review/car-0", json=body, headers=headers).status_code == 422
    assert client.post("/v1/review/car-0", json=accept, headers=headers).status_code == 200  # nothing was stored
