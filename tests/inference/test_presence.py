"""A model with the ``presence`` output: the verdict comes from presence, the boxes explain it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from redbox import PRESENCE, PRESENCE_METADATA, edited, photo

from autoinspect.evaluation import EvalImage
from autoinspect.evaluation.calibration import calibrate_review_margin
from autoinspect.inference import Detector
from autoinspect.inference.postprocess import near_threshold
from autoinspect.onnx_metadata import ModelFileError, write_metadata

RED = (30, 20, 90, 70)
DAMAGED = photo(240, 120, RED)
CLEAN = photo(240, 120)


@pytest.fixture
def presence_model(models: dict[str, Path]) -> Path:
    return models["presence"]


def with_presence_thresholds(model: Path, target: Path, thresholds: dict[str, float] | None) -> Path:
    copy = edited(model, target)
    write_metadata(copy, PRESENCE_METADATA.model_copy(update={"presence_thresholds": thresholds}))
    return copy


def test_verdict_names_only_the_classes_whose_presence_passes(presence_model: Path) -> None:
    """Boxes say scratch (0.9) and dent (0.7), presence says scratch 0.8 and dent 0.3 against 0.5 each."""
    prediction = Detector(presence_model, intra_op_threads=1).predict(DAMAGED)
    assert prediction.verdict.labels == ("scratch",)
    assert prediction.presence == pytest.approx(dict(zip(["scratch", "dent"], PRESENCE, strict=True)))
    assert {d.label for d in prediction.detections} == {"scratch"}  # the dent box is not reported
    assert {c.label for c in prediction.candidates} == {"scratch", "dent"}  # but stays a candidate for AP
    assert prediction.max_score == pytest.approx(0.8)
    assert prediction.needs_review  # dent presence 0.3 lies in the review band [0.25, 0.6)


def test_a_clean_photo_is_none_without_boxes(presence_model: Path) -> None:
    prediction = Detector(presence_model, intra_op_threads=1).predict(CLEAN)
    assert prediction.verdict.is_none and prediction.detections == []
    assert prediction.presence == {"scratch": 0.0, "dent": 0.0} and not prediction.needs_review


def test_a_named_class_is_located_even_when_no_box_passes(presence_model: Path, tmp_path: Path) -> None:
    """Dent presence 0.3 passes a 0.25 threshold; its best box (0.7) is under the 0.95 box threshold given."""
    model = with_presence_thresholds(presence_model, tmp_path / "m.onnx", {"scratch": 0.5, "dent": 0.25})
    prediction = Detector(model, thresholds={"dent": 0.95}, intra_op_threads=1).predict(DAMAGED)
    assert prediction.verdict.labels == ("dent", "scratch")
    dents = [d for d in prediction.detections if d.label == "dent"]
    assert len(dents) == 1 and dents[0].confidence == pytest.approx(0.7)


def test_uncalibrated_presence_is_reported_but_boxes_decide(presence_model: Path, tmp_path: Path) -> None:
    model = with_presence_thresholds(presence_model, tmp_path / "m.onnx", None)
    prediction = Detector(model, intra_op_threads=1).predict(DAMAGED)
    assert prediction.verdict.labels == ("dent", "scratch")  # box rule: both pass 0.5
    assert prediction.presence is not None and prediction.presence["scratch"] == pytest.approx(0.8)


def test_presence_thresholds_without_the_output_are_refused(models: dict[str, Path], tmp_path: Path) -> None:
    model = edited(models["dynamic"], tmp_path / "m.onnx")
    write_metadata(model, PRESENCE_METADATA)
    with pytest.raises(ModelFileError, match="presence thresholds need the 'presence' output"):
        Detector(model)


def test_a_calibrated_review_margin_flags_only_photos_near_a_threshold(presence_model: Path, tmp_path: Path) -> None:
    """Presence scratch 0.8 and dent 0.3 against 0.5: 1.39 and 0.85 logits away from their thresholds."""
    model = edited(presence_model, tmp_path / "m.onnx")
    for margin, flagged in ((0.5, False), (1.0, True)):
        write_metadata(model, PRESENCE_METADATA.model_copy(update={"review_margin": margin}))
        detector = Detector(model, intra_op_threads=1)
        assert detector.predict(DAMAGED).needs_review is flagged, margin
        assert not detector.predict(CLEAN).needs_review  # presence 0: far from every threshold


def test_calibration_sends_the_chosen_share_of_val_photos_for_review() -> None:
    images = [
        EvalImage(image_id=str(i), width=9, height=9, presence={"scratch": p, "dent": 0.01})
        for i, p in enumerate(np.linspace(0.01, 0.99, 20))
    ]
    margin = calibrate_review_margin(images, ["scratch", "dent"], {"scratch": 0.5, "dent": 0.5}, share=0.2)
    assert margin is not None
    flagged = [near_threshold(image.presence or {}, {"scratch": 0.5, "dent": 0.5}, margin) for image in images]
    assert sum(flagged) == 4 and all(flagged[8:12])  # the 20 % nearest the threshold
