"""COCO average precision and precision-recall curves, from the pooled matching of one class.

The numbers agree with pycocotools ``COCOeval`` (``bbox``, area "all", 100 detections) to float rounding: the
same 101 recall points, the same precision envelope and the same tie order. A class without ground truth has
no AP (``None``); COCO reports -1 for it and leaves it out of the mean, and so does ``map50`` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
from pydantic import BaseModel

from autoinspect.evaluation.matching import IOU50, IOU75, FloatArray, PooledMatches

RECALL_POINTS: Final[FloatArray] = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1)
"""COCO's 101 recall points 0, 0.01, ..., 1, built as pycocotools builds them."""


class ClassAveragePrecision(BaseModel):
    """Detection quality of one class over the whole score range."""

    truth: int
    """Ground-truth boxes of the class."""
    detections: int
    """Detections counted (at most 100 per image)."""
    ap50: float | None
    """AP at IoU 0.5; ``None`` without ground truth."""
    ap75: float | None
    ap50_95: float | None
    """AP averaged over IoU 0.50:0.05:0.95, COCO's headline figure."""


class DetectionMetrics(BaseModel):
    """AP per class and its means over the classes that have ground truth."""

    per_class: dict[str, ClassAveragePrecision]
    map50: float | None
    map75: float | None
    map50_95: float | None


class PRCurve(BaseModel):
    """Raw (not interpolated) precision-recall corners at IoU 0.5, best score first.

    A corner is a score at which recall rises; between corners precision only falls, so the corners (plus the
    end of the list) are all a plot or an F1 reading needs, at most one point per truth box however many
    low-score detections an AP run keeps.
    """

    recall: list[float]
    precision: list[float]
    scores: list[float]
    """The threshold that gives each point: keep the detections scoring at least this."""


def interpolated_precision(pooled: PooledMatches) -> FloatArray | None:
    """``[IoU thresholds, 101]`` precision at each recall point, COCO's ``eval["precision"][:, :, k, 0, -1]``.

    Precision is made monotone from the right (the best precision at any higher recall), then read at the first
    rank that reaches each recall point; recall points never reached get 0.
    """
    if pooled.n_truth == 0:
        return None
    hits = np.cumsum(pooled.true_positive, axis=1, dtype=np.float64)
    misses = np.cumsum(~pooled.true_positive, axis=1, dtype=np.float64)
    recall = hits / pooled.n_truth
    precision = hits / (misses + hits + np.spacing(1))
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    table = np.zeros((len(recall), len(RECALL_POINTS)))
    for row in range(len(recall)):
        ranks = np.searchsorted(recall[row], RECALL_POINTS, side="left")
        reached = ranks < recall.shape[1]
        table[row, reached] = envelope[row, ranks[reached]]
    return table


def class_average_precision(pooled: PooledMatches) -> ClassAveragePrecision:
    """AP50, AP75 and AP50-95 of one class."""
    table = interpolated_precision(pooled)
    return ClassAveragePrecision(
        truth=pooled.n_truth,
        detections=len(pooled.scores),
        ap50=None if table is None else float(table[IOU50].mean()),
        ap75=None if table is None else float(table[IOU75].mean()),
        ap50_95=None if table is None else float(table.mean()),
    )


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def detection_metrics(pooled: Mapping[str, PooledMatches]) -> DetectionMetrics:
    """AP of every class and the means over classes with ground truth."""
    per_class = {label: class_average_precision(matches) for label, matches in pooled.items()}
    return DetectionMetrics(
        per_class=per_class,
        map50=_mean([ap.ap50 for ap in per_class.values()]),
        map75=_mean([ap.ap75 for ap in per_class.values()]),
        map50_95=_mean([ap.ap50_95 for ap in per_class.values()]),
    )


def pr_curve(pooled: PooledMatches) -> PRCurve | None:
    """The PR corners at IoU 0.5 for plots; ``None`` without ground truth (recall is undefined).

    Tied scores form one point: no threshold can keep one of them and drop the other.
    """
    if pooled.n_truth == 0:
        return None
    hits = np.cumsum(pooled.true_positive[IOU50], dtype=np.float64)
    ends = np.flatnonzero(np.append(pooled.scores[1:] != pooled.scores[:-1], True)[: len(hits)])
    corners = ends[(hits[ends] > np.append(0.0, hits[ends][:-1])) | (ends == len(hits) - 1)]
    return PRCurve(
        recall=(hits[corners] / pooled.n_truth).tolist(),
        precision=(hits[corners] / (corners + 1)).tolist(),
        scores=pooled.scores[corners].tolist(),
    )
