"""``/v1/inspections`` on a running service with the red-box model: a vehicle's photos in, one answer per photo and
one for the vehicle out, stored, listed and fetched again as answered."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdf
from fastapi.testclient import TestClient
from served import KeyFactory, jpeg, running_service, wait_for_log
from typer.testing import CliRunner

from autoinspect import cli
from autoinspect.config import Settings
from autoinspect.store import Scope
from autoinspect.ui.client import ApiClient

SIDES = ["front", "rear", "left", "right"]


def _inspect(
    client: TestClient,
    key: str,
    vehicle: str,
    reds: list[bool],
    views: list[str] | None = None,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    files = [("images", (f"p{index}.jpg", jpeg(red=red, seed=index), "image/jpeg")) for index, red in enumerate(reds)]
    data: dict[str, Any] = {"vehicle_id": vehicle, **fields}
    if views is not None:
        data["views"] = views
    return client.post("/v1/inspections", files=files, data=data, headers={"X-API-Key": key, **(headers or {})})


def test_an_inspection_answers_each_photo_and_the_vehicle_and_keeps_the_answer(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    key = make_key(Scope.INSPECT)
    response = _inspect(client, key, "VIN-1", [False, False, True, False], SIDES, client_reference="claim 7")
    assert response.status_code == 200, response.text
    body = response.json()
    inspection = body["inspection_id"]
    assert body["vehicle_id"] == "VIN-1" and body["client_reference"] == "claim 7" and body["created_by"] == "test"
    assert [photo["request_id"] for photo in body["photos"]] == [f"{inspection}.{index}" for index in range(4)]
    assert [photo["view"] for photo in body["photos"]] == SIDES
    assert [photo["verdict"] for photo in body["photos"]] == [["None"], ["None"], ["dent", "scratch"], ["None"]]
    left = body["photos"][2]["detections"]
    assert {d["size"] for d in left} == {"large"} and all(abs(d["area"] - 0.16) < 0.02 for d in left)  # 40 % x 40 %
    summary = body["summary"]
    assert summary["outcome"] == "damaged" and summary["verdict"] == ["dent", "scratch"] and summary["damaged"]
    assert summary["damages"] == {"dent": 1, "scratch": 1} and summary["needs_review"]
    assert summary["largest"]["photo"] == 2 and summary["largest"]["size"] == "large"
    assert summary["views_covered"] == SIDES and summary["views_missing"] == []
    assert "Damage on 1 of 4 usable photo(s)" in summary["detail"]
    wait_for_log(registry, 4)  # every photo is in the prediction log, for review and monitoring
    fetched = client.get(f"/v1/inspections/{inspection}", headers={"X-API-Key": key})
    assert fetched.status_code == 200 and fetched.json() == body
    one = client.post("/v1/inspect", files={"image": ("car.jpg", jpeg(red=True))}, headers={"X-API-Key": key}).json()
    assert all(d["size"] is None and d["area"] > 0.1 for d in one["detections"])  # no view: an area, no size


def test_clean_photos_answer_none_only_when_they_cover_the_vehicle(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key(Scope.INSPECT)
    partial = _inspect(client, key, "VIN-2", [False, False], ["front", "left"]).json()["summary"]
    assert partial["outcome"] == "incomplete" and partial["verdict"] == [] and not partial["damaged"]
    assert partial["views_missing"] == ["rear", "right"] and "missing rear, right" in partial["detail"]
    covered = _inspect(client, key, "VIN-2", [False] * 5, [*SIDES, "detail"]).json()["summary"]
    assert covered["outcome"] == "clean" and covered["verdict"] == ["None"] and covered["largest"] is None
    unknown = _inspect(client, key, "VIN-2", [False] * 3).json()["summary"]  # no views: enough photos stand in
    assert unknown["outcome"] == "incomplete"
    assert _inspect(client, key, "VIN-2", [False] * 4).json()["summary"]["outcome"] == "clean"


def test_a_resent_inspection_returns_the_stored_answer_and_another_vehicle_conflicts(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    key = make_key(Scope.INSPECT)
    first = _inspect(client, key, "VIN-3", [True, False], headers={"X-Request-ID": "claim-42"})
    again = _inspect(client, key, "VIN-3", [True, False], headers={"X-Request-ID": "claim-42"})
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json()["inspection_id"] == "claim-42"
    log = wait_for_log(registry, 2)
    assert log.count() == 2  # answered once
    other = _inspect(client, key, "VIN-9", [False], headers={"X-Request-ID": "claim-42"})
    assert other.status_code == 409 and "another vehicle" in other.json()["detail"]


def test_inspections_are_listed_newest_first_by_vehicle_and_time_in_pages(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key(Scope.INSPECT)
    ids = [_inspect(client, key, "VIN-4", [False]).json()["inspection_id"] for _ in range(3)]
    _inspect(client, key, "VIN-5", [True])
    headers = {"X-API-Key": key}
    page = client.get("/v1/inspections", params={"vehicle_id": "VIN-4", "limit": 2}, headers=headers).json()
    assert [item["inspection_id"] for item in page["items"]] == ids[::-1][:2]
    assert page["total"] == 3 and page["next_offset"] == 2 and page["items"][0]["outcome"] == "incomplete"
    rest = client.get("/v1/inspections", params={"vehicle_id": "VIN-4", "offset": 2}, headers=headers).json()
    assert [item["inspection_id"] for item in rest["items"]] == ids[:1] and rest["next_offset"] is None
    everything = client.get("/v1/inspections", headers=headers).json()
    assert everything["total"] == 4 and everything["items"][0]["vehicle_id"] == "VIN-5"
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get("/v1/inspections", params={"since": later}, headers=headers).json()["total"] == 0
    naive = client.get("/v1/inspections", params={"since": "2026-01-01T00:00:00"}, headers=headers)
    assert naive.status_code == 422


def test_an_inspection_as_json_with_views(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key(Scope.INSPECT)
    photos = [
        {"image_base64": base64.b64encode(jpeg(red=False, seed=index)).decode(), "view": side}
        for index, side in enumerate(SIDES)
    ]
    response = client.post(
        "/v1/inspections", json={"vehicle_id": "VIN-6", "photos": photos}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"]["outcome"] == "clean" and [p["name"] for p in body["photos"]] == [
        f"photo {index}" for index in range(4)
    ]


def test_bad_inspection_requests_get_a_clear_4xx(client: TestClient, make_key: KeyFactory, registry: Settings) -> None:
    key = make_key(Scope.INSPECT)
    headers = {"X-API-Key": key}
    photo = ("images", ("car.jpg", jpeg(red=False), "image/jpeg"))
    cases = [
        (client.post("/v1/inspections", files=[photo], headers=headers), 400, "vehicle_id is required"),
        (
            client.post(
                "/v1/inspections", files=[photo, photo], data={"vehicle_id": "V", "views": ["front"]}, headers=headers
            ),
            422,
            "1 views for 2 photos",
        ),
        (
            client.post(
                "/v1/inspections", files=[photo], data={"vehicle_id": "V", "views": ["bonnet"]}, headers=headers
            ),
            422,
            "unknown view",
        ),
        (
            client.post(
                "/v1/inspections",
                files=[photo, ("images", ("notes.jpg", b"not a photo", "image/jpeg"))],
                data={"vehicle_id": "V"},
                headers=headers,
            ),
            422,
            "notes.jpg",
        ),
        (
            client.post("/v1/inspections", content=b"x", headers={**headers, "content-type": "text/plain"}),
            415,
            "multipart",
        ),
        (client.post("/v1/inspections", json={"vehicle_id": "V", "photos": []}, headers=headers), 422, "photos"),
        (
            client.post(
                "/v1/inspections",
                files=[photo],
                data={"vehicle_id": "V"},
                headers={"X-API-Key": make_key(Scope.REVIEW)},
            ),
            403,
            "inspect",
        ),
        (client.get("/v1/inspections/nope", headers=headers), 404, "no inspection nope"),
    ]
    too_many = registry.inspections.max_photos + 1
    crowd = [("images", (f"{index}.jpg", jpeg(red=False), "image/jpeg")) for index in range(too_many)]
    cases.append(
        (client.post("/v1/inspections", files=crowd, data={"vehicle_id": "V"}, headers=headers), 413, "at most")
    )
    for response, status, words in cases:
        assert response.status_code == status, (status, response.text)
        assert words in response.json()["detail"], (words, response.text)
    assert client.get("/v1/inspections", headers=headers).json()["total"] == 0  # nothing half-stored


def test_inspect_vehicle_cli_sends_the_photos_with_their_views_to_the_api(
    registry: Settings, make_key: KeyFactory, tmp_path: Path
) -> None:
    key = make_key(Scope.INSPECT)
    paths = []
    for index, red in enumerate([False, True]):
        paths.append(tmp_path / f"side{index}.jpg")
        paths[-1].write_bytes(jpeg(red=red, seed=index))
    with running_service(registry) as url:
        args = ["inspect-vehicle", "VIN-7", *map(str, paths), "--view", "left", "--view", "right"]
        result = CliRunner().invoke(
            cli.app, [*args, "--api-url", url, "--reference", "RA-1"], env={"AUTOINSPECT_API_KEY": key}
        )
        assert result.exit_code == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["vehicle_id"] == "VIN-7" and answer["client_reference"] == "RA-1"
        assert [photo["view"] for photo in answer["photos"]] == ["left", "right"]
        assert answer["summary"]["outcome"] == "damaged" and "Damage on 1 of 2 usable" in result.stderr
        with ApiClient(url, key) as client:
            assert client.inspection(answer["inspection_id"]) == answer
            assert client.inspections(vehicle_id="VIN-7")["total"] == 1
        refused = CliRunner().invoke(cli.app, [*args, "--api-url", url, "--key", "aik_wrong"])
        assert refused.exit_code == 1 and "401" in refused.stderr
    mismatch = CliRunner().invoke(cli.app, ["inspect-vehicle", "V", str(paths[0]), "--view", "a", "--view", "b"])
    assert mismatch.exit_code == 2 and "one per photo" in mismatch.output


def test_the_report_is_one_printable_html_file_with_photos_findings_and_reviews(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    key = make_key(Scope.INSPECT, Scope.REVIEW)
    headers = {"X-API-Key": key}
    body = _inspect(client, key, "VIN-8", [True, False], ["left", "right"], client_reference="<b>claim</b>").json()
    wait_for_log(registry, 2)
    reviewed = body["photos"][0]["request_id"]
    assert client.post(f"/v1/review/{reviewed}", json={"decision": "accept"}, headers=headers).status_code == 200
    response = client.get(f"/v1/inspections/{body['inspection_id']}/report", headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert html.count('<img src="data:image/jpeg;base64,') == 2  # both photos, embedded
    assert "Vehicle inspection: VIN-8" in html and "Damage found" in html and "model version 1" in html
    assert "&lt;b&gt;claim&lt;/b&gt;" in html and "<b>claim</b>" not in html  # client text is escaped
    assert "Reviewed by test" in html and "the model's answer was confirmed" in html and "Not reviewed" in html
    assert "http://" not in html and "https://" not in html  # self-contained: nothing fetched when opened
    assert client.get("/v1/inspections/nope/report", headers=headers).status_code == 404

    url = f"/v1/inspections/{body['inspection_id']}/report"
    pdf = client.get(url, params={"format": "pdf"}, headers=headers)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert f'filename="inspection-{body["inspection_id"]}.pdf"' in pdf.headers["content-disposition"]
    document = pypdf.PdfReader(io.BytesIO(pdf.content))
    text = " ".join(page.extract_text() for page in document.pages)
    assert "Vehicle inspection: VIN-8" in text and "Damage found" in text and "<b>claim</b>" in text
    assert "Reviewed by test" in text and "Not reviewed" in text
    # both photos, laid out (the pages share one resource dictionary, so each page lists both)
    assert len({image.name for page in document.pages for image in page.images}) == 2
    assert client.get(url, params={"format": "docx"}, headers=headers).status_code == 422
    assert client.get("/v1/inspections/nope/report", params={"format": "pdf"}, headers=headers).status_code == 404
