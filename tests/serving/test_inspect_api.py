"""The inspect endpoints on a real app: answers, the prediction log, stored photos, metrics, bad input."""

from __future__ import annotations

import base64
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from postgres import postgres_schema
from registered import flip_weight_signs
from s3 import s3_server
from served import KeyFactory, jpeg, wait_for_log

from autoinspect.config import Settings, StorageSettings
from autoinspect.serving.app import create_app
from autoinspect.store import (
    ApiKeys,
    ImageStore,
    PredictionEntry,
    PredictionLog,
    Route,
    Scope,
    create_schema,
    make_engine,
)


def test_a_damaged_photo_gets_its_classes_boxes_and_a_review_flag(client: TestClient, make_key: KeyFactory) -> None:
    headers = {"X-API-Key": make_key(Scope.INSPECT)}
    response = client.post("/v1/inspect", files={"image": ("car.jpg", jpeg(red=True), "image/jpeg")}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == ["dent", "scratch"] and body["damaged"] is True and 0.8 < body["confidence"] <= 1
    assert [d["label"] for d in body["detections"]] == ["scratch", "dent"]
    box = body["detections"][0]["box"]
    assert abs(box["x1"] - 40 / 200) < 0.02 and abs(box["y2"] - 90 / 150) < 0.02  # the red rectangle
    assert body["needs_review"] is True  # the weak dent sits in the review band
    assert body["model_version"] == "1" and body["route"] == "champion"
    assert (body["width"], body["height"]) == (200, 150)
    assert body["latency_ms"] > 0 and len(body["request_id"]) == 32


def test_a_clean_photo_as_base64_json_is_none_and_is_logged_with_features_and_image(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    data = jpeg(red=False)
    response = client.post(
        "/v1/inspect",
        json={"image_base64": base64.b64encode(data).decode(), "vehicle_id": "WVW-1"},
        headers={"Authorization": f"Bearer {make_key(Scope.INSPECT)}", "X-Request-ID": "intake-42"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == ["None"] and body["damaged"] is False and body["detections"] == []  # one type
    assert body["confidence"] < 0.5
    assert response.json()["needs_review"] is False and response.json()["request_id"] == "intake-42"
    (entry,) = _all(registry)
    assert entry.request_id == "intake-42" and entry.vehicle_id == "WVW-1" and entry.route is Route.CHAMPION
    assert entry.verdict == "None" and entry.model_version == "1"
    assert entry.features is not None and entry.features["width"] == 200
    assert entry.image_sha256 is not None
    assert ImageStore(registry.images_dir).get(entry.image_sha256) == data


def test_a_photo_decoded_below_full_size_is_answered_in_its_own_size(registry: Settings, make_key: KeyFactory) -> None:
    capped = registry.model_copy(update={"serving": registry.serving.model_copy(update={"max_side": 100})})
    with TestClient(create_app(capped)) as client:
        response = client.post(
            "/v1/inspect", files={"image": ("car.jpg", jpeg(red=True))}, headers={"X-API-Key": make_key()}
        )
    body = response.json()
    assert response.status_code == 200 and (body["width"], body["height"]) == (200, 150)  # decoded at 100 x 75
    box = body["detections"][0]["box"]
    assert abs(box["x1"] - 40 / 200) < 0.03 and abs(box["y2"] - 90 / 150) < 0.03  # the red rectangle, normalised
    (entry,) = _all(capped)
    assert entry.features is not None and (entry.features["width"], entry.features["height"]) == (200, 150)


def _all(settings: Settings) -> list[PredictionEntry]:
    now = datetime.now(UTC)
    return wait_for_log(settings, 1).between(now - timedelta(hours=1), now + timedelta(hours=1))


def test_a_resent_request_id_is_logged_once(client: TestClient, make_key: KeyFactory, registry: Settings) -> None:
    headers = {"X-API-Key": make_key(), "X-Request-ID": "same-photo"}
    for _ in range(3):
        response = client.post("/v1/inspect", files={"image": ("a.jpg", jpeg(red=True))}, headers=headers)
        assert response.status_code == 200
    client.post("/v1/inspect", files={"image": ("b.jpg", jpeg(red=False))}, headers={"X-API-Key": make_key()})
    assert wait_for_log(registry, 2).count() == 2


def test_batch_answers_each_photo_in_order(client: TestClient, make_key: KeyFactory, registry: Settings) -> None:
    files = [("images", (f"{i}.jpg", jpeg(red=i % 2 == 0, seed=i), "image/jpeg")) for i in range(3)]
    response = client.post("/v1/inspect/batch", files=files, headers={"X-API-Key": make_key()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["verdict"] for r in body["results"]] == [["dent", "scratch"], ["None"], ["dent", "scratch"]]
    assert [r["request_id"] for r in body["results"]] == [f"{body['request_id']}.{i}" for i in range(3)]
    assert wait_for_log(registry, 3).count() == 3
    as_json = {"images_base64": [base64.b64encode(jpeg(red=False)).decode()] * 2}
    response = client.post("/v1/inspect/batch", json=as_json, headers={"X-API-Key": make_key()})
    assert [r["verdict"] for r in response.json()["results"]] == [["None"], ["None"]]


def test_review_queue_lists_the_flagged_predictions(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    inspect_key, review_key = make_key(Scope.INSPECT), make_key(Scope.REVIEW)
    client.post("/v1/inspect", files={"image": ("a.jpg", jpeg(red=True))}, headers={"X-API-Key": inspect_key})
    client.post("/v1/inspect", files={"image": ("b.jpg", jpeg(red=False))}, headers={"X-API-Key": inspect_key})
    wait_for_log(registry, 2)
    assert client.get("/v1/review/queue", headers={"X-API-Key": inspect_key}).status_code == 403
    queue = client.get("/v1/review/queue", headers={"X-API-Key": review_key}).json()
    assert [entry["verdict"] for entry in queue] == [["dent", "scratch"]]


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_input_gets_a_clear_4xx_and_the_service_keeps_answering(client: TestClient, make_key: KeyFactory) -> None:
    headers = {"X-API-Key": make_key()}
    good = jpeg(red=True)
    cases = {
        "text body": (client.post, {"content": b"hello", "headers": {**headers, "Content-Type": "text/plain"}}, 415),
        "no body": (client.post, {"headers": headers}, 415),
        "empty json": (client.post, {"content": b"", "headers": {**headers, "Content-Type": "application/json"}}, 400),
        "json without image": (client.post, {"json": {"vehicle_id": "x"}, "headers": headers}, 422),
        "bad base64": (client.post, {"json": {"image_base64": "%%%"}, "headers": headers}, 422),
        "empty file": (client.post, {"files": {"image": ("a.jpg", b"")}, "headers": headers}, 400),
        "wrong field": (client.post, {"files": {"photo": ("a.jpg", good)}, "headers": headers}, 400),
        "truncated jpeg": (
            client.post,
            {"files": {"image": ("a.jpg", good[: len(good) // 2])}, "headers": headers},
            422,
        ),
        "not an image": (client.post, {"files": {"image": ("a.jpg", b"GIF89a" + b"x" * 50)}, "headers": headers}, 422),
        "bomb": (client.post, {"files": {"image": ("big.png", _png(2500, 2000))}, "headers": headers}, 413),
        "body over limit": (client.post, {"files": {"image": ("a.jpg", b"\xff" * 3_100_000)}, "headers": headers}, 413),
        **{
            f"request id {rid!r}": (
                client.post,
                {"files": {"image": ("a.jpg", good)}, "headers": {**headers, "X-Request-ID": rid}},
                400,
            )
            for rid in ("../etc", ".", "..", "-:_")
        },
    }
    for name, (call, kwargs, status) in cases.items():
        response = call("/v1/inspect", **kwargs)
        assert response.status_code == status, (name, response.text)
        assert isinstance(response.json()["detail"], str) and response.json()["detail"], name
    assert "truncated" in client.post("/v1/inspect", files={"image": ("a.jpg", good[:2000])}, headers=headers).text
    too_many = [("images", (f"{i}.jpg", good)) for i in range(5)]
    response = client.post("/v1/inspect/batch", files=too_many, headers=headers)
    assert response.status_code == 413 and "at most 4" in response.json()["detail"]
    mixed = [("images", ("ok.jpg", good)), ("images", ("broken.jpg", good[:100]))]
    response = client.post("/v1/inspect/batch", files=mixed, headers=headers)
    assert response.status_code == 422 and "broken.jpg" in response.json()["detail"]
    response = client.post("/v1/inspect", files={"image": ("a.jpg", good)}, headers=headers)
    assert response.status_code == 200


def test_metrics_count_answers_by_verdict_version_and_route(client: TestClient, make_key: KeyFactory) -> None:
    headers = {"X-API-Key": make_key()}
    for red in (True, True, False):
        client.post("/v1/inspect", files={"image": ("a.jpg", jpeg(red=red))}, headers=headers)
    client.post("/v1/inspect", content=b"x", headers={**headers, "Content-Type": "text/plain"})
    text = client.get("/metrics").text
    assert 'autoinspect_inspections_total{model_version="1",route="champion",verdict="dent+scratch"} 2.0' in text
    assert 'autoinspect_inspections_total{model_version="1",route="champion",verdict="None"} 1.0' in text
    assert 'autoinspect_needs_review_total{model_version="1"} 2.0' in text
    assert 'autoinspect_errors_total{endpoint="/v1/inspect",status="415"} 1.0' in text
    assert 'autoinspect_request_latency_seconds_count{endpoint="/v1/inspect"} 4.0' in text
    assert 'autoinspect_model_serving{role="champion",version="1"} 1.0' in text


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["champion"] == 1 and ready.json()["mode"] == "single"


def test_without_a_champion_the_replica_is_not_ready_and_says_why(tracked_settings: Settings) -> None:
    with TestClient(create_app(tracked_settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        assert response.status_code == 503 and "promote" in response.json()["detail"]


def test_a_tampered_champion_is_refused_and_only_admins_read_why(registry: Settings, make_key: KeyFactory) -> None:
    assert flip_weight_signs(registry)  # a valid model with the wrong weights, swapped in before the start
    with TestClient(create_app(registry)) as client:
        response = client.get("/readyz")
        detail = response.json()["detail"]
        assert response.status_code == 503 and "loading it failed" in detail, detail
        assert str(registry.home.resolve()) not in detail and "/" not in detail.replace("GET /v1/deployment", "")
        state = client.get("/v1/deployment", headers={"X-API-Key": make_key(Scope.ADMIN)})
        assert state.status_code == 503 and "model.onnx" in state.json()["detail"]
        assert "SHA-256 mismatch" in state.json()["detail"]
        inspect = client.post(
            "/v1/inspect", files={"image": ("a.jpg", jpeg(red=True))}, headers={"X-API-Key": make_key()}
        )
        assert inspect.status_code == 503


def test_docs_pages_load_their_assets_from_the_api_itself(client: TestClient) -> None:
    for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        html = client.get(page).text
        assert f"/static-offline-docs/{asset}" in html and "cdn." not in html, page
        script = client.get(f"/static-offline-docs/{asset}")
        assert script.status_code == 200 and len(script.content) > 100_000


def test_the_openapi_spec_documents_both_encodings_and_the_key(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/inspect"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    assert {"APIKeyHeader", "HTTPBearer"} <= set(spec["components"]["securitySchemes"])


def test_the_service_logs_to_postgresql_in_production_configuration(registry: Settings) -> None:
    """Keys, predictions and the review queue on the local PostgreSQL, as docker compose runs them."""
    with postgres_schema() as url:
        settings = registry.model_copy(update={"store": registry.store.model_copy(update={"url": url})})
        engine = make_engine(url)
        create_schema(engine)
        token = ApiKeys(engine).create("intake", [Scope.ADMIN]).token
        with TestClient(create_app(settings)) as client:
            for red in (True, False, True):
                response = client.post(
                    "/v1/inspect", files={"image": ("a.jpg", jpeg(red=red))}, headers={"X-API-Key": token}
                )
                assert response.status_code == 200, response.text
            deadline = time.monotonic() + 10
            while PredictionLog(engine).count() < 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            queue = client.get("/v1/review/queue", headers={"X-API-Key": token}).json()
        assert len(queue) == 2 and engine.dialect.name == "postgresql"
        engine.dispose()


def test_with_an_s3_photo_store_every_replica_keeps_served_photos_in_the_bucket(
    registry: Settings, make_key: KeyFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``storage.images_url``: photos go to object storage, where any host (the UI, training) finds them."""
    with s3_server(monkeypatch, "photos") as endpoint:
        storage = StorageSettings(images_url="s3://photos/served", s3_endpoint_url=endpoint)
        settings = registry.model_copy(update={"storage": storage})
        data = jpeg(red=True, seed=5)
        with TestClient(create_app(settings)) as client:
            response = client.post(
                "/v1/inspect", files={"image": ("car.jpg", data)}, headers={"X-API-Key": make_key(Scope.INSPECT)}
            )
            assert response.status_code == 200, response.text
        (entry,) = _all(registry)
        assert entry.image_sha256 is not None
        assert not registry.images_dir.exists()  # nothing on the replica's disk
        elsewhere = settings.model_copy(update={"home": tmp_path / "another-host"})
        assert ImageStore.for_settings(elsewhere).get(entry.image_sha256) == data
        listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket="photos")["Contents"]
        assert [item["Key"] for item in listed] == [f"served/{entry.image_sha256[:2]}/{entry.image_sha256}"]
