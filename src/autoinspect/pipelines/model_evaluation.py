"""Evaluates an exported model through the Detector, the path that serves it, and scores checkpoints on val.

``calibrate_and_evaluate`` is the evaluation step of a training run: thresholds are calibrated per class on val,
written into the ONNX file (so the file alone serves as evaluated), and the test split is measured at them,
with latency, figures and the error gallery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.evaluation import EvalImage, EvaluationResult, calibrate_thresholds, evaluate
from autoinspect.evaluation.calibration import calibrate_presence, calibrate_review_margin
from autoinspect.evaluation.figures import error_gallery, pr_curve_figure
from autoinspect.inference import Detector
from autoinspect.inference.letterbox import letterbox_batch
from autoinspect.inference.postprocess import decode_rows, near_threshold, presence_by_class
from autoinspect.onnx_metadata import write_metadata
from autoinspect.pipelines.labelled_photos import LabelledPhoto
from autoinspect.progress import figure, progress_bar, rounded_figures
from autoinspect.registry.gates import LATENCY_MS_P95
from autoinspect.training.base import RawPredictor, TrainConfig, ValScorer
from autoinspect.training.tracking import EVALUATION_FILE, log_evaluation

logger = logging.getLogger(__name__)

VAL_EVALUATION_FILE = "val_evaluation.json"
SELECTION_THRESHOLD = 0.25
DEFAULT_REVIEW_SHARE: float = TrainConfig.model_fields["review_share"].default
REVIEW_SHARE = "image/review_share"
"""Flat metric: share of test photos sent for review at the calibrated margin."""
"""Thresholds while scoring checkpoints; the selection metric (AP) does not depend on them."""


class ModelEvaluation(BaseModel):
    """What the evaluation step leaves: test figures at val-calibrated thresholds, and where the files are."""

    thresholds: dict[str, float]
    test: EvaluationResult
    latency_ms_p50: float
    latency_ms_p95: float
    review_share: float | None = None
    """Share of test photos the calibrated review margin sends to a person (``None``: a box model)."""
    evaluation_json: Path
    figures: list[Path]

    def log_to_run(self, settings: Settings, run_id: str, model_file: Path) -> None:
        """Attach this evaluation (metrics, report, figures) and the evaluated model file to an MLflow run."""
        log_evaluation(settings, run_id, self.evaluation_json, self.flat_metrics(), self.figures, model_file=model_file)

    def flat_metrics(self) -> dict[str, float]:
        review = {} if self.review_share is None else {REVIEW_SHARE: self.review_share}
        return {
            **self.test.flat_metrics(),
            "latency_ms_p50": self.latency_ms_p50,
            LATENCY_MS_P95: self.latency_ms_p95,
            **review,
        }


def make_val_scorer(photos: Sequence[LabelledPhoto], classes: list[str], imgsz: int, iou_threshold: float) -> ValScorer:
    """Scores a checkpoint on val with the Detector's own post-processing; photos are letterboxed once."""
    batch, transforms = letterbox_batch([p.rgb for p in photos], imgsz)
    thresholds = dict.fromkeys(classes, SELECTION_THRESHOLD)

    def score(predict: RawPredictor) -> Mapping[str, float]:
        rows, presence = predict(batch)
        images = [
            photo.with_predictions(
                decode_rows(r, t, classes=classes, iou_threshold=iou_threshold),
                None if presence is None else presence_by_class(classes, presence[index]),
            )
            for index, (photo, r, t) in enumerate(zip(photos, rows, transforms, strict=True))
        ]
        # presence verdicts at thresholds fitted on these same photos: optimistic, but comparable across epochs
        presence_thresholds = calibrate_presence(images, classes)
        result = evaluate(images, classes, thresholds, error_count=0, presence_thresholds=presence_thresholds)
        return result.flat_metrics()

    return score


EVAL_CHUNK = 16
"""Photos per Detector call while evaluating: the bar moves every chunk."""


def _predict(detector: Detector, photos: Sequence[LabelledPhoto]) -> list[EvalImage]:
    """Every candidate (and the presence, for a presence model) of each photo, ready for the evaluator."""
    chunks = [photos[start : start + EVAL_CHUNK] for start in range(0, len(photos), EVAL_CHUNK)]
    images = []
    for chunk in progress_bar(chunks, f"evaluating {len(photos)} photos", unit="chunk"):
        predictions = detector.predict_batch([photo.rgb for photo in chunk])
        images += [
            photo.with_predictions(p.candidates, p.presence) for photo, p in zip(chunk, predictions, strict=True)
        ]
    return images


def evaluate_detector(
    detector: Detector,
    photos: Sequence[LabelledPhoto],
    thresholds: Mapping[str, float],
    presence_thresholds: Mapping[str, float] | None = None,
) -> EvaluationResult:
    """All metrics of a loaded model on decoded photos; presence thresholds default to the model's own."""
    presence_thresholds = presence_thresholds or detector.metadata.presence_thresholds
    return evaluate(
        _predict(detector, photos), detector.metadata.classes, thresholds, presence_thresholds=presence_thresholds
    )


def measure_latency(detector: Detector, photos: Sequence[LabelledPhoto], limit: int = 20) -> tuple[float, float]:
    """p50 and p95 of single-photo latency (letterbox + run + post-processing), milliseconds."""
    timings = []
    for photo in photos[:limit]:
        started = time.perf_counter()
        detector.predict(photo.rgb)
        timings.append((time.perf_counter() - started) * 1000)
    if not timings:
        return 0.0, 0.0
    return float(np.percentile(timings, 50)), float(np.percentile(timings, 95))


def calibrate_and_evaluate(
    onnx_path: Path,
    val: Sequence[LabelledPhoto],
    test: Sequence[LabelledPhoto],
    out_dir: Path,
    *,
    review_share: float = DEFAULT_REVIEW_SHARE,
) -> ModelEvaluation:
    """Calibrate thresholds (and, for a presence model, the review margin) on val, store them in the model file,
    then measure the test split at them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    detector = Detector(onnx_path)
    classes = detector.metadata.classes
    val_images = _predict(detector, val)
    thresholds = calibrate_thresholds(val_images, classes)
    presence_thresholds = calibrate_presence(val_images, classes)
    margin = None
    if presence_thresholds is not None:
        margin = calibrate_review_margin(val_images, classes, presence_thresholds, review_share)
    val_result = evaluate(val_images, classes, thresholds, error_count=0, presence_thresholds=presence_thresholds)
    (out_dir / VAL_EVALUATION_FILE).write_text(val_result.model_dump_json(indent=1), encoding="utf-8")
    calibrated = {"score_thresholds": thresholds, "presence_thresholds": presence_thresholds, "review_margin": margin}
    write_metadata(onnx_path, detector.metadata.model_copy(update=calibrated))
    test_images = _predict(detector, test)
    result = evaluate(test_images, classes, thresholds, presence_thresholds=presence_thresholds)
    reviewed = None
    if presence_thresholds is not None and margin is not None and test_images:
        flagged = [near_threshold(image.presence or {}, presence_thresholds, margin) for image in test_images]
        reviewed = sum(flagged) / len(flagged)
    p50, p95 = measure_latency(detector, test)
    figures = [pr_curve_figure(result, out_dir / "pr_curves.png")]
    by_id = {photo.image_id: photo for photo in test}
    if result.error_cases:
        figures.append(error_gallery(result.error_cases, by_id, out_dir / "error_gallery.png"))
    evaluation = ModelEvaluation(
        thresholds=thresholds,
        test=result,
        latency_ms_p50=p50,
        latency_ms_p95=p95,
        review_share=reviewed,
        evaluation_json=out_dir / EVALUATION_FILE,
        figures=figures,
    )
    evaluation.evaluation_json.write_text(evaluation.model_dump_json(indent=1), encoding="utf-8")
    logger.info(
        "test: map50 %s, damaged caught %s, clean None %s, thresholds %s, latency p95 %.1f ms",
        figure(result.detection.map50),
        figure(result.image_level.damaged_caught),
        figure(result.image_level.clean_none_rate),
        rounded_figures(thresholds),
        p95,
    )
    return evaluation
