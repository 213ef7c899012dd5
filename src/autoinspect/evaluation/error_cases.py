"""The photos a model gets most wrong, with what went wrong on each, for the error gallery.

Photos are ranked by their number of box errors (missed truth boxes plus false detections at the operating
thresholds, IoU 0.5), then by how close their closest detection came to its threshold: among equally bad photos
the borderline ones come first, because they are the ones a threshold change would flip.

Example labels: ``"missed scratch"``, ``"false dent"`` (on a damaged car), ``"false dent on clean car"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel

from autoinspect.domain import Box, Verdict
from autoinspect.evaluation.image_level import predicted_verdict, truth_verdict
from autoinspect.evaluation.inputs import EvalImage, check_inputs
from autoinspect.evaluation.matching import IOU50, ClassMatches, MatchTable, match_images
from autoinspect.evaluation.operating_point import kept


class ErrorKind(StrEnum):
    MISSED = "missed"
    """A truth box no passing detection matched."""
    FALSE = "false"
    """A passing detection that matched no truth box, on a damaged car."""
    FALSE_ON_CLEAN = "false_on_clean"
    """A passing detection on a car with no damage at all: a false alarm the customer sees."""


class ErrorBox(BaseModel):
    """One wrong box, normalised as in :class:`autoinspect.domain.Box`, ready to draw."""

    kind: ErrorKind
    label: str
    box: Box
    confidence: float | None
    """The detection's score; ``None`` for a missed truth box."""


class ErrorCase(BaseModel):
    """One photo of the gallery."""

    image_id: str
    truth: Verdict
    predicted: Verdict
    false_negatives: int
    false_positives: int
    margin: float | None
    """Smallest ``|score - class threshold|`` over the photo's detections; ``None`` without detections."""
    kinds: list[str]
    """Distinct human-readable labels, e.g. ``["false dent on clean car", "missed scratch"]``."""
    boxes: list[ErrorBox]


def describe(kind: ErrorKind, label: str) -> str:
    """The gallery caption of one error kind."""
    return {
        ErrorKind.MISSED: f"missed {label}",
        ErrorKind.FALSE: f"false {label}",
        ErrorKind.FALSE_ON_CLEAN: f"false {label} on clean car",
    }[kind]


def _class_errors(image: EvalImage, matches: ClassMatches, threshold: float) -> list[ErrorBox]:
    n_kept = kept(matches, threshold)
    matched = matches.matched[IOU50, :n_kept]
    false_kind = ErrorKind.FALSE if image.damaged else ErrorKind.FALSE_ON_CLEAN
    errors = []
    for det_index in matches.detections[:n_kept][matched < 0]:
        det = image.predictions[int(det_index)]
        errors.append(ErrorBox(kind=false_kind, label=det.label, box=det.box, confidence=det.confidence))
    missed = sorted(set(range(matches.n_truth)) - set(matched[matched >= 0].tolist()))
    for truth_index in matches.truths[missed]:
        box = image.truth[int(truth_index)]
        errors.append(ErrorBox(kind=ErrorKind.MISSED, label=box.label, box=box.box, confidence=None))
    return errors


def _margin(image: EvalImage, thresholds: Mapping[str, float]) -> float | None:
    gaps = [abs(det.confidence - thresholds[det.label]) for det in image.predictions]
    return min(gaps) if gaps else None


def _error_case(
    image: EvalImage,
    row: Mapping[str, ClassMatches],
    thresholds: Mapping[str, float],
    presence_thresholds: Mapping[str, float] | None,
) -> ErrorCase:
    boxes = [error for label, matches in row.items() for error in _class_errors(image, matches, thresholds[label])]
    misses = sum(box.kind is ErrorKind.MISSED for box in boxes)
    return ErrorCase(
        image_id=image.image_id,
        truth=truth_verdict(image),
        predicted=predicted_verdict(image, thresholds, presence_thresholds),
        false_negatives=misses,
        false_positives=len(boxes) - misses,
        margin=_margin(image, thresholds),
        kinds=sorted({describe(box.kind, box.label) for box in boxes}),
        boxes=boxes,
    )


def rank_error_cases(
    images: Sequence[EvalImage],
    table: MatchTable,
    thresholds: Mapping[str, float],
    k: int,
    presence_thresholds: Mapping[str, float] | None = None,
) -> list[ErrorCase]:
    """The ``k`` worst photos from an existing matching (see the module docstring for the order)."""
    cases = [_error_case(image, row, thresholds, presence_thresholds) for image, row in zip(images, table, strict=True)]
    wrong = [case for case in cases if case.boxes]
    wrong.sort(key=lambda c: (-(c.false_negatives + c.false_positives), math.inf if c.margin is None else c.margin))
    return wrong[:k]


def error_cases(images: Sequence[EvalImage], thresholds: Mapping[str, float], k: int) -> list[ErrorCase]:
    """The ``k`` worst photos at these per-class thresholds; photos without any box error are never listed."""
    classes = list(thresholds)
    check_inputs(images, classes, thresholds)
    return rank_error_cases(images, match_images(images, classes), thresholds, k)
