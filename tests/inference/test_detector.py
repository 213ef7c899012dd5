"""The Detector end to end on real ONNX models: placement, batching, thresholds, verdict, review, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from redbox import METADATA, edited, photo

from autoinspect.domain import ONNX_METADATA_KEY
from autoinspect.errors import ConfigError, ImageDecodeError
from autoinspect.inference import Detector, Prediction, read_metadata
from autoinspect.onnx_metadata import ModelFileError, write_metadata

RED = (30, 20, 90, 70)
WIDE = photo(240, 120, RED)
"""Shrunk to 2/3 and letterboxed with 40 grey rows above and below: a pixel of the input is 1.5 photo pixels."""


def summary(prediction: Prediction) -> list[tuple[str, float, tuple[float, ...]]]:
    """Label, score and pixel box of every candidate, rounded to compare runs."""
    return [
        (
            c.label,
            round(c.confidence, 4),
            tuple(round(v, 3) for v in c.box.to_pixels(prediction.width, prediction.height)),
        )
        for c in prediction.candidates
    ]


def png(rgb: npt.NDArray[np.uint8]) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def detector(model_path: Path) -> Detector:
    return Detector(model_path, intra_op_threads=1)


def test_boxes_land_on_the_damage_in_original_photo_pixels(detector: Detector) -> None:
    prediction = detector.predict(WIDE)
    assert (prediction.width, prediction.height) == (240, 120)
    scratch, dent = prediction.detections
    assert (scratch.label, dent.label) == ("scratch", "dent")
    for found in (scratch, dent):
        np.testing.assert_allclose(found.box.to_pixels(240, 120), RED, atol=1.5)


def test_same_class_duplicates_are_suppressed_and_weak_candidates_kept_apart(detector: Detector) -> None:
    prediction = detector.predict(WIDE)
    assert [(c.label, round(c.confidence, 2)) for c in prediction.candidates] == [
        ("scratch", 0.9),
        ("dent", 0.7),
        ("dent", 0.3),
    ]
    assert [d.label for d in prediction.detections] == ["scratch", "dent"]
    assert prediction.verdict.value == ["dent", "scratch"]
    assert prediction.max_score == pytest.approx(0.9)


def test_the_unsure_candidate_sends_the_photo_to_review(detector: Detector) -> None:
    assert detector.predict(WIDE).needs_review  # the 0.3 dent lies in the band [0.25, 0.6)


def test_a_clean_photo_is_none_with_nothing_to_review(detector: Detector) -> None:
    prediction = detector.predict(photo(200, 150))
    assert prediction.verdict.value == "None"
    assert prediction.candidates == [] and prediction.max_score == 0.0 and not prediction.needs_review


def test_thresholds_override_the_models_per_class(model_path: Path) -> None:
    stricter = Detector(model_path, thresholds={"dent": 0.75})
    assert stricter.thresholds == {"scratch": 0.5, "dent": 0.75}
    assert stricter.metadata.score_thresholds == METADATA.score_thresholds
    assert stricter.predict(WIDE).verdict.value == ["scratch"]


def test_verdict_is_none_when_nothing_passes_yet_candidates_stay_for_evaluation(model_path: Path) -> None:
    prediction = Detector(model_path, thresholds={"scratch": 0.95, "dent": 0.95}).predict(WIDE)
    assert prediction.verdict.value == "None" and prediction.detections == []
    assert len(prediction.candidates) == 3 and prediction.needs_review


def test_thresholds_for_unknown_classes_or_out_of_range_are_refused(model_path: Path) -> None:
    with pytest.raises(ConfigError, match="rust"):
        Detector(model_path, thresholds={"rust": 0.5})
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        Detector(model_path, thresholds={"dent": 1.5})


@pytest.mark.parametrize("kind", ["dynamic", "batch1", "batch2"])
def test_a_batch_gives_the_same_answers_as_single_photos(models: dict[str, Path], kind: str) -> None:
    detector = Detector(models[kind], max_batch_size=2)
    photos = [
        WIDE,
        photo(90, 130, (31, 47, 62, 101), seed=1),
        photo(64, 64, seed=2),
        photo(400, 250, (113, 40, 301, 171)),
    ]
    batched = detector.predict_batch(photos)
    assert [summary(p) for p in batched] == [summary(detector.predict(rgb)) for rgb in photos]
    assert [len(p.candidates) for p in batched] == [3, 3, 0, 3]


def test_fixed_and_dynamic_batch_models_agree(models: dict[str, Path]) -> None:
    answers = {kind: summary(Detector(path).predict(WIDE)) for kind, path in models.items()}
    assert answers["batch1"] == answers["dynamic"] == answers["batch2"]


def test_an_empty_batch_is_an_empty_answer(detector: Detector) -> None:
    assert detector.predict_batch([]) == []


def test_bytes_and_files_decode_to_the_same_answer(detector: Detector, tmp_path: Path) -> None:
    encoded = png(WIDE)
    (tmp_path / "car.png").write_bytes(encoded)
    expected = summary(detector.predict(WIDE))
    assert summary(detector.predict_bytes(encoded)) == expected
    assert summary(detector.predict_file(tmp_path / "car.png")) == expected


def test_timing_covers_every_step(detector: Detector) -> None:
    timing = detector.predict(WIDE).timing
    assert min(timing.pre_ms, timing.run_ms, timing.post_ms) > 0


def test_corrupt_or_missing_photos_raise_decode_errors_with_the_reason(detector: Detector, tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="truncated"):
        detector.predict_bytes(png(WIDE)[:200])
    with pytest.raises(ImageDecodeError, match="not a recognised image format"):
        detector.predict_bytes(b"definitely not a photo")
    with pytest.raises(ImageDecodeError, match="not found"):
        detector.predict_file(tmp_path / "missing.jpg")


def test_a_model_without_metadata_is_refused_clearly(model_path: Path, tmp_path: Path) -> None:
    bare = edited(model_path, tmp_path / "bare.onnx", metadata="")
    with pytest.raises(ModelFileError, match=f"no '{ONNX_METADATA_KEY}' metadata"):
        Detector(bare)
    with pytest.raises(ModelFileError, match="invalid"):
        Detector(edited(model_path, tmp_path / "broken.onnx", metadata='{"classes": ["dent"]}'))


def test_a_model_with_other_names_or_sizes_is_refused_clearly(model_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="one input named 'images'"):
        Detector(edited(model_path, tmp_path / "renamed.onnx", input_name="input"))
    resized = METADATA.model_copy(update={"input_size": 320})
    with pytest.raises(ModelFileError, match="input_size 320"):
        Detector(edited(model_path, tmp_path / "resized.onnx", metadata=resized.model_dump_json()))


def test_a_model_without_a_threshold_for_a_class_needs_one_given(model_path: Path, tmp_path: Path) -> None:
    partial = METADATA.model_copy(update={"score_thresholds": {"scratch": 0.5}})
    path = edited(model_path, tmp_path / "partial.onnx", metadata=partial.model_dump_json())
    with pytest.raises(ModelFileError, match="dent"):
        Detector(path)
    assert Detector(path, thresholds={"dent": 0.4}).thresholds == {"scratch": 0.5, "dent": 0.4}


def test_something_that_is_not_onnx_is_refused_clearly() -> None:
    with pytest.raises(ModelFileError, match="not a loadable ONNX model"):
        Detector(b"not a model")


def test_read_metadata_sees_what_the_exporter_wrote(model_path: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(model_path.read_bytes())
    recalibrated = METADATA.model_copy(update={"score_thresholds": {"scratch": 0.3, "dent": 0.6}})
    write_metadata(copy, recalibrated)
    assert read_metadata(copy) == recalibrated == read_metadata(copy.read_bytes())


def test_model_bytes_load_like_a_file(model_path: Path) -> None:
    assert summary(Detector(model_path.read_bytes()).predict(WIDE)) == summary(Detector(model_path).predict(WIDE))
