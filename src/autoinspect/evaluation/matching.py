"""Greedy one-to-one matching of detections to ground truth, exactly as COCO's ``bbox`` evaluation does it.

Every metric of the evaluator (AP, PR curves, operating point, error gallery, calibration) reads the same
matching, so the figures cannot disagree about which detection hit which box. The rules, from pycocotools:

- boxes are compared in pixels (``xyxy``, without the +1 of old VOC code), as pycocotools compares them;
- per image and class, detections are taken best score first (a stable sort: equal scores keep input order)
  and at most ``MAX_DETECTIONS`` of them count;
- each detection takes the still unmatched truth box it overlaps most, if that overlap is at least the IoU
  threshold; of equal overlaps it takes the later box, as pycocotools does.

Because detections are matched best first, the matches of the detections above any score threshold are exactly
the prefix of this matching: the operating point and the calibration sweep need no second pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from autoinspect.domain import Annotation
from autoinspect.evaluation.inputs import EvalImage

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

IOU_THRESHOLDS: Final[FloatArray] = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
"""COCO's .50:.05:.95, built as pycocotools builds it so that boundary cases (0.7000000000000001) agree."""
IOU50: Final = 0
"""Row of ``IOU_THRESHOLDS`` at IoU 0.5: the operating point, PR curves and calibration use it."""
IOU75: Final = 5
MAX_DETECTIONS: Final = 100
"""COCO's ``maxDets``: per image and class, as pycocotools applies it with ``useCats``."""

MatchTable = list[dict[str, "ClassMatches"]]
"""One entry per image, in input order: class name -> the matching of that class in that image."""


@dataclass(frozen=True, slots=True)
class ClassMatches:
    """The matching of one class in one image."""

    scores: FloatArray
    """Scores of the counted detections, best first."""
    detections: IntArray
    """Index in ``EvalImage.predictions`` of each counted detection, in the order of ``scores``."""
    truths: IntArray
    """Index in ``EvalImage.truth`` of each ground-truth box of the class."""
    matched: IntArray
    """``[len(IOU_THRESHOLDS), len(scores)]``: position in ``truths`` of the box each detection matched, or -1."""

    @property
    def n_truth(self) -> int:
        return len(self.truths)


@dataclass(frozen=True, slots=True)
class PooledMatches:
    """The detections of one class over many images, best first: what AP and threshold sweeps read."""

    scores: FloatArray
    true_positive: BoolArray
    """``[len(IOU_THRESHOLDS), len(scores)]``."""
    n_truth: int


def pixel_boxes(boxes: Sequence[Annotation], width: int, height: int) -> FloatArray:
    """``[n, 4]`` pixel ``xyxy`` boxes."""
    return np.array([box.box.to_pixels(width, height) for box in boxes], dtype=np.float64).reshape(-1, 4)


def iou_matrix(detections: FloatArray, truths: FloatArray) -> FloatArray:
    """``[n, m]`` IoU of pixel ``xyxy`` boxes; 0 where both boxes are empty.

    Example:
        >>> iou_matrix(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0]])).round(3).tolist()
        [[0.333]]
    """
    low = np.maximum(detections[:, None, :2], truths[None, :, :2])
    high = np.minimum(detections[:, None, 2:], truths[None, :, 2:])
    sides = np.clip(high - low, 0.0, None)
    inter = sides[..., 0] * sides[..., 1]
    area_d = (detections[:, 2] - detections[:, 0]) * (detections[:, 3] - detections[:, 1])
    area_t = (truths[:, 2] - truths[:, 0]) * (truths[:, 3] - truths[:, 1])
    union = area_d[:, None] + area_t[None, :] - inter
    iou: FloatArray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou


def greedy_match(ious: FloatArray, thresholds: FloatArray) -> IntArray:
    """Match rows (detections, best first) to columns (truth boxes) once per IoU threshold.

    Example:
        >>> greedy_match(np.array([[0.6, 0.8], [0.9, 0.0]]), np.array([0.5, 0.85])).tolist()
        [[1, 0], [-1, 0]]
    """
    n_det, n_truth = ious.shape
    matched = np.full((len(thresholds), n_det), -1, dtype=np.int64)
    if n_truth == 0:
        return matched
    for row, threshold in enumerate(thresholds):
        free = np.ones(n_truth, dtype=bool)
        for det in np.flatnonzero((ious >= threshold).any(axis=1)):  # the others match nothing
            overlap = np.where(free & (ious[det] >= threshold), ious[det], -1.0)
            if overlap.max() < 0.0:
                continue
            best = n_truth - 1 - int(np.argmax(overlap[::-1]))
            matched[row, det] = best
            free[best] = False
    return matched


def match_class(image: EvalImage, label: str, max_detections: int = MAX_DETECTIONS) -> ClassMatches:
    """Match the detections of one class in one image at every COCO IoU threshold."""
    truths = np.array([i for i, box in enumerate(image.truth) if box.label == label], dtype=np.int64)
    candidates = np.array([i for i, det in enumerate(image.predictions) if det.label == label], dtype=np.int64)
    all_scores = np.array([image.predictions[i].confidence for i in candidates], dtype=np.float64)
    order = np.argsort(-all_scores, kind="mergesort")[:max_detections]
    detections = candidates[order]
    ious = iou_matrix(
        pixel_boxes([image.predictions[i] for i in detections], image.width, image.height),
        pixel_boxes([image.truth[i] for i in truths], image.width, image.height),
    )
    return ClassMatches(all_scores[order], detections, truths, greedy_match(ious, IOU_THRESHOLDS))


def match_images(
    images: Sequence[EvalImage], classes: Sequence[str], max_detections: int = MAX_DETECTIONS
) -> MatchTable:
    """The matching of every class in every image."""
    return [{label: match_class(image, label, max_detections) for label in classes} for image in images]


def pool(matches: Sequence[ClassMatches]) -> PooledMatches:
    """Concatenate per-image matchings in input order, then sort best first (stably, as pycocotools does)."""
    scores = np.concatenate([np.empty(0), *(m.scores for m in matches)])
    hits = np.concatenate([np.empty((len(IOU_THRESHOLDS), 0), dtype=bool), *(m.matched >= 0 for m in matches)], axis=1)
    order = np.argsort(-scores, kind="mergesort")
    return PooledMatches(scores[order], hits[:, order], sum(m.n_truth for m in matches))
