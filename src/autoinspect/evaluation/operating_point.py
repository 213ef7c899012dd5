"""Box-level precision, recall and F1 at the thresholds a model is served with.

AP describes the whole score range; these figures describe the one point users see. A detection counts when
its score is at least its class threshold, and it is a true positive when the COCO matching at IoU 0.5 paired
it with a truth box (one-to-one: a second box on the same damage is a false positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel

from autoinspect.evaluation.matching import IOU50, ClassMatches, IntArray, MatchTable
from autoinspect.evaluation.rates import f1_score, rate


class ClassOperatingPoint(BaseModel):
    """Counts and rates of one class at its threshold, IoU 0.5."""

    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float | None
    """``None`` when nothing passed the threshold."""
    recall: float | None
    """``None`` when the class has no truth boxes."""
    f1: float | None
    """``None`` only when there are neither truth boxes nor detections."""

    @classmethod
    def from_counts(cls, threshold: float, tp: int, fp: int, fn: int) -> ClassOperatingPoint:
        return cls(
            threshold=threshold,
            true_positives=tp,
            false_positives=fp,
            false_negatives=fn,
            precision=rate(tp, tp + fp),
            recall=rate(tp, tp + fn),
            f1=f1_score(tp, fp, fn),
        )


def kept(matches: ClassMatches, threshold: float) -> int:
    """How many of the (best-first) detections pass the threshold: they are a prefix of the matching."""
    return int(np.count_nonzero(matches.scores >= threshold))


def class_counts(matches: ClassMatches, threshold: float) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of one class in one image."""
    n_kept = kept(matches, threshold)
    tp = int(np.count_nonzero(matches.matched[IOU50, :n_kept] >= 0))
    return tp, n_kept - tp, matches.n_truth - tp


def count_table(table: MatchTable, classes: Sequence[str], thresholds: Mapping[str, float]) -> IntArray:
    """``[images, classes, 3]`` TP/FP/FN per image, so that any group of images (a slice) sums its own."""
    counts = [[class_counts(row[label], thresholds[label]) for label in classes] for row in table]
    return np.array(counts, dtype=np.int64).reshape(len(table), len(classes), 3)


def operating_points(
    counts: IntArray, classes: Sequence[str], thresholds: Mapping[str, float]
) -> dict[str, ClassOperatingPoint]:
    """Sum the per-image counts (rows of ``count_table``) into one operating point per class."""
    totals = counts.sum(axis=0)
    return {
        label: ClassOperatingPoint.from_counts(thresholds[label], *(int(n) for n in totals[i]))
        for i, label in enumerate(classes)
    }
