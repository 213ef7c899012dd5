"""The photo-quality gate on the real sample: no real photo is refused, degraded copies of them are, each for the
right reason; and through the API a refused photo is answered "retake", logged, counted and left out of the
vehicle's answer."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter
from served import KeyFactory, jpeg, wait_for_log

from autoinspect.config import QualityGateSettings, Settings
from autoinspect.images import decode_image
from autoinspect.serving.photo_quality import measure, retake_reasons
from autoinspect.store import Scope

Degrade = Callable[[Image.Image], Image.Image]


def _white_disc(image: Image.Image) -> Image.Image:
    copy = image.copy()
    width, height = copy.size
    ImageDraw.Draw(copy).ellipse((width * 0.15, height * 0.15, width * 0.85, height * 0.85), fill=(255, 255, 255))
    return copy


DEGRADED: dict[str, tuple[Degrade, str]] = {
    "motion-free blur": (lambda image: image.filter(ImageFilter.GaussianBlur(max(image.size) / 120)), "blurred"),
    "night": (lambda image: ImageEnhance.Brightness(image).enhance(0.1), "too dark"),
    "washed out": (lambda image: Image.blend(image, Image.new("RGB", image.size, "white"), 0.9), "overexposed"),
    "sun on the door": (_white_disc, "heavy glare"),
    "thumbnail": (lambda image: image.resize((96, 72)), "too small"),
}


def _reasons(data: bytes) -> list[str]:
    return retake_reasons(measure(decode_image(data)), QualityGateSettings())


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _photos(sample_root: Path) -> list[Path]:
    return sorted((sample_root / "images").rglob("*.jpg"))


def test_no_photo_of_the_real_sample_is_refused(sample_root: Path) -> None:
    refused = {path.name: _reasons(path.read_bytes()) for path in _photos(sample_root)}
    assert len(refused) > 300
    assert {name: reasons for name, reasons in refused.items() if reasons} == {}


@pytest.mark.parametrize("kind", list(DEGRADED))
def test_degraded_copies_of_real_photos_are_refused_for_the_right_reason(sample_root: Path, kind: str) -> None:
    degrade, reason = DEGRADED[kind]
    for path in _photos(sample_root)[::25]:
        with Image.open(path) as photo:
            reasons = _reasons(_jpeg(degrade(photo.convert("RGB"))))
        assert any(text.startswith(reason) for text in reasons), (path.name, reasons)


def test_the_gate_can_be_switched_off() -> None:
    dark = _jpeg(Image.new("RGB", (640, 480), (5, 5, 5)))
    assert _reasons(dark)[0].startswith("too dark")
    assert retake_reasons(measure(decode_image(dark)), QualityGateSettings(enabled=False)) == []


def test_a_refused_photo_is_answered_retake_logged_counted_and_left_out_of_the_vehicle(
    client: TestClient, make_key: KeyFactory, registry: Settings
) -> None:
    key = make_key(Scope.INSPECT)
    headers = {"X-API-Key": key}
    dark = ImageEnhance.Brightness(Image.open(io.BytesIO(jpeg(red=True)))).enhance(0.05)
    answer = client.post("/v1/inspect", files={"image": ("dark.jpg", _jpeg(dark))}, headers=headers).json()
    assert answer["retake"] and answer["verdict"] == [] and not answer["damaged"] and answer["detections"] == []
    assert answer["retake_reasons"][0].startswith("too dark")
    sides = ["front", "rear", "left", "right"]
    files = [("images", (f"{side}.jpg", jpeg(red=False, seed=i), "image/jpeg")) for i, side in enumerate(sides)]
    files.append(("images", ("dark.jpg", _jpeg(dark), "image/jpeg")))
    body = client.post(
        "/v1/inspections", files=files, data={"vehicle_id": "V", "views": [*sides, "left"]}, headers=headers
    ).json()
    summary = body["summary"]
    assert (
        summary["retakes"] == [4] and summary["outcome"] == "clean" and "Retake dark.jpg (too dark" in summary["detail"]
    )
    log = wait_for_log(registry, 6)
    assert log.get(answer["request_id"]).verdict == "Retake"  # type: ignore[union-attr]
    assert 'autoinspect_retakes_total{reason="too dark"} 2.0' in client.get("/metrics").text
