"""Metric key builders and the shared bucket edges."""

from __future__ import annotations

import pytest

from autoinspect.evaluation import (
    BOX_SIZE_BUCKETS,
    BRIGHTNESS_BUCKETS,
    MetricName,
    box_size_bucket,
    brightness_bucket,
    metric_key,
    slice_metric_key,
)


def test_metric_keys() -> None:
    assert metric_key(MetricName.MAP50_95) == "map50_95"
    assert metric_key(MetricName.IMAGE_RECALL, "dent") == "image/recall/dent"
    assert slice_metric_key("source", "a/b c", "recall/dent") == "slice/source/a_b c/recall/dent"


@pytest.mark.parametrize(("name", "label"), [(MetricName.AP50, None), (MetricName.MAP50, "dent")])
def test_metric_key_refuses_a_label_mismatch(name: MetricName, label: str | None) -> None:
    with pytest.raises(ValueError, match="label"):
        metric_key(name, label)


@pytest.mark.parametrize(
    ("value", "bucket"), [(0.0, "dark"), (84.99, "dark"), (85.0, "normal"), (169.9, "normal"), (170.0, "bright")]
)
def test_brightness_edges(value: float, bucket: str) -> None:
    assert brightness_bucket(value) == bucket


@pytest.mark.parametrize(
    ("side", "bucket"),
    [(0.5, "tiny"), (7.9, "tiny"), (8.0, "small"), (16.0, "medium"), (31.9, "medium"), (32, "large")],
)
def test_box_size_edges(side: float, bucket: str) -> None:
    assert box_size_bucket(side) == bucket


def test_buckets_refuse_nan_and_list_every_name() -> None:
    with pytest.raises(ValueError, match="NaN"):
        brightness_bucket(float("nan"))
    assert {brightness_bucket(v) for v in (10.0, 100.0, 200.0)} == set(BRIGHTNESS_BUCKETS)
    assert {box_size_bucket(v) for v in (1.0, 10.0, 20.0, 50.0)} == set(BOX_SIZE_BUCKETS)
