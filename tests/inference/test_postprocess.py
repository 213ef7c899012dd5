"""Post-processing rules on hand-written model rows: filtering, NMS, mapping back, thresholds, review band."""

from __future__ import annotations

import numpy as np
import pytest

from autoinspect.domain import Box, Detection
from autoinspect.images import Letterbox
from autoinspect.inference import LetterboxTransform, StageTimes, apply_thresholds, decode_rows, needs_review, nms
from autoinspect.inference.postprocess import build_prediction
from autoinspect.onnx_metadata import ModelFileError

CLASSES = ["scratch", "dent"]
# a 400 x 200 photo letterboxed into 200 x 200: half scale, 50 grey rows above and below
TRANSFORM = LetterboxTransform(placement=Letterbox(scale=0.5, pad_x=0, pad_y=50), width=400, height=200)
TIMING = StageTimes(pre_ms=1.0, run_ms=2.0, post_ms=0.5)


def rows(*row: tuple[float, ...]) -> np.ndarray:
    return np.array(row, dtype=np.float32).reshape(-1, 6)


def decode(model_rows: np.ndarray, iou_threshold: float = 0.5) -> list[Detection]:
    return decode_rows(model_rows, TRANSFORM, classes=CLASSES, iou_threshold=iou_threshold)


def detection(label: str, score: float) -> Detection:
    return Detection(label=label, box=Box(x1=0.1, y1=0.1, x2=0.2, y2=0.2), confidence=score)


def test_nms_suppresses_overlaps_within_a_class_only() -> None:
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [1, 0, 11, 10], [0, 0, 10, 10], [1, 1, 10, 10]], dtype=float)
    scores = np.array([0.9, 0.5, 0.8, 0.7, 0.95])
    class_ids = np.array([0, 0, 0, 1, 1])
    assert nms(boxes, scores, class_ids, 0.5).tolist() == [4, 0, 1]


def test_nms_keeps_classes_apart_even_off_the_photo() -> None:
    boxes = np.array([[-50, -50, -10, -10], [-50, -50, -10, -10], [-49, -50, -10, -10]], dtype=float)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([1, 0, 1]), 0.5).tolist() == [0, 1]


def test_nms_keeps_a_box_whose_iou_equals_the_threshold() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], dtype=float)  # IoU = 50 / 150
    assert nms(boxes, np.array([0.9, 0.8]), np.array([0, 0]), 1 / 3).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), np.array([0, 0]), 0.3).tolist() == [0]


def test_nms_stops_at_max_keep() -> None:
    boxes = np.array([[i * 20, 0, i * 20 + 10, 10] for i in range(5)], dtype=float)
    assert nms(boxes, np.linspace(0.9, 0.5, 5), np.zeros(5, np.intp), 0.5, max_keep=3).tolist() == [0, 1, 2]


def test_rows_are_mapped_to_the_photo_and_normalised() -> None:
    (found,) = decode(rows((20, 60, 120, 110, 0.8, 1)))
    assert found.label == "dent" and found.confidence == pytest.approx(0.8)
    assert found.box.to_pixels(400, 200) == pytest.approx((40, 20, 240, 120))


def test_padding_weak_non_finite_and_off_photo_rows_are_dropped() -> None:
    found = decode(
        rows(
            (0, 0, 0, 0, 0, 0),  # padding
            (10, 60, 20, 70, 0.0005, 0),  # under the candidate floor
            (10, 60, np.nan, 70, 0.9, 0),  # broken numbers
            (10, 10, 30, 40, 0.9, 0),  # entirely in the grey band above the photo
            (10, 60, 20, 70, 0.002, 0),  # weak but a candidate
        )
    )
    assert [round(d.confidence, 3) for d in found] == [0.002]


def test_candidates_come_best_first_and_overlaps_of_one_class_are_suppressed() -> None:
    found = decode(
        rows(
            (10, 60, 50, 100, 0.4, 0),
            (11, 60, 51, 100, 0.6, 0),  # overlaps the 0.4 scratch: that one goes
            (10, 60, 50, 100, 0.5, 1),  # same place, other class: stays
        )
    )
    assert [(d.label, round(d.confidence, 2)) for d in found] == [("scratch", 0.6), ("dent", 0.5)]


def test_boxes_are_clipped_to_the_photo() -> None:
    (found,) = decode(rows((-10, 40, 250, 120, 0.9, 0)))
    assert (found.box.x1, found.box.y1, found.box.x2) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize("bad", [(10, 60, 20, 70, 0.9, 2), (10, 60, 20, 70, 0.9, 0.5), (10, 60, 20, 70, 1.5, 0)])
def test_rows_outside_the_contract_are_a_model_error(bad: tuple[float, ...]) -> None:
    with pytest.raises(ModelFileError, match="breaks the contract"):
        decode(rows(bad))


def test_thresholds_are_per_class_and_inclusive() -> None:
    found = [detection("scratch", 0.5), detection("scratch", 0.49), detection("dent", 0.3)]
    kept = apply_thresholds(found, {"scratch": 0.5, "dent": 0.2})
    assert [(d.label, d.confidence) for d in kept] == [("scratch", 0.5), ("dent", 0.3)]


@pytest.mark.parametrize(
    ("scores", "expected"),
    [((), False), ((0.1, 0.9), False), ((0.25,), True), ((0.9, 0.59), True), ((0.6,), False), ((0.2499,), False)],
)
def test_review_band_is_lower_inclusive_upper_exclusive(scores: tuple[float, ...], expected: bool) -> None:
    assert needs_review([detection("dent", score) for score in scores], (0.25, 0.6)) is expected


def test_verdict_is_none_when_no_candidate_passes_its_threshold() -> None:
    candidates = [detection("dent", 0.3), detection("scratch", 0.1)]
    prediction = build_prediction(
        candidates, TRANSFORM, thresholds={"scratch": 0.5, "dent": 0.5}, review_band=(0.25, 0.6), timing=TIMING
    )
    assert prediction.verdict.value == "None" and prediction.detections == []
    assert prediction.candidates == candidates and prediction.max_score == 0.3
    assert prediction.needs_review and prediction.latency_ms == 3.5
    assert (prediction.width, prediction.height) == (400, 200)
