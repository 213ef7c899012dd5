"""Domain types and settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from autoinspect.config import Settings
from autoinspect.domain import Box, Verdict


def test_box_conversions_round_trip() -> None:
    box = Box.from_yolo(0.5, 0.4, 0.2, 0.1)
    assert box.to_yolo() == pytest.approx((0.5, 0.4, 0.2, 0.1))
    assert box.to_pixels(200, 100) == pytest.approx((80, 35, 120, 45))
    assert box.min_side_px(200, 100) == pytest.approx(10)
    assert box.iou(Box.from_pixels(80, 35, 120, 45, 200, 100)) == pytest.approx(1.0)
    assert box.iou(Box(x1=0.9, y1=0.9, x2=1.0, y2=1.0)) == 0.0
    with pytest.raises(ValidationError):
        Box(x1=0.5, y1=0.5, x2=0.4, y2=0.6)


def test_verdict_none_and_labels() -> None:
    assert Verdict.from_labels([]).value == "None"
    assert Verdict.from_labels(["scratch", "dent", "scratch"]).value == ["dent", "scratch"]


def test_settings_sources_yaml_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "autoinspect.yaml"
    config.write_text("classes: [scratch, dent, crack]\nvalidation:\n  min_side_px: 100\n  min_pixel_std: 2.5\n")
    monkeypatch.setenv("AUTOINSPECT_CONFIG", str(config))
    monkeypatch.setenv("AUTOINSPECT_VALIDATION__MIN_SIDE_PX", "128")
    settings = Settings()
    assert settings.classes == ["scratch", "dent", "crack"]
    assert settings.validation.min_side_px == 128  # the environment wins over the file
    assert settings.validation.min_pixel_std == 2.5


def test_settings_reject_bad_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="unique"):
        Settings(classes=["dent", "dent"])
    config = tmp_path / "bad.yaml"
    config.write_text("colour: red\n")
    monkeypatch.setenv("AUTOINSPECT_CONFIG", str(config))
    with pytest.raises(ValidationError, match="colour"):
        Settings()
