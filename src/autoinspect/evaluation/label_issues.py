"""Rank suspected label errors from out-of-sample predictions with cleanlab.

Four kinds, each from cleanlab's own scores (lower = more likely a label error):

- ``missing box``: a confident predicted box that no label box matches (cleanlab's *overlooked* score), on a
  photo that has other labels;
- ``damage labelled clean``: the same on a photo labelled "None", or the photo-level presence of a class that
  cleanlab's multi-label ranking finds contradicts the photo's empty label;
- ``wrong class``: a label box that a confident prediction of another class covers (*swap* score);
- ``misplaced box``: a label box whose best same-class prediction sits elsewhere (*bad location* score);
- ``photo classes disagree``: a labelled photo whose set of classes the presence output contradicts
  (cleanlab's multi-label ranking), e.g. labelled scratch only where the model is sure of a dent.

cleanlab's object-detection scores treat a prediction as confident from probability 0.95, which assumes
calibrated probabilities; a detector's box scores are not (ours rarely pass 0.5 on true damage). So each class's
scores are first mapped, monotonically, onto [0, 1] with its trusted score (:data:`CONFIDENT_PRECISION`) at
``CONFIDENT``: "confident" then means "as sure as the boxes that were right more often than not, out of fold".
Which photos are flagged is cleanlab's ``find_label_issues`` decision, which scales its per-box thresholds by each
class's AP on these predictions: a weak fold model flags little, a strong one more.
Boxes are compared in pixels of the photo scaled to a ``SCALE``-pixel long side, because cleanlab mixes IoU with
a pixel distance and the sources' photos range from 640 to 4000 pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from multiprocessing.pool import ThreadPool
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from autoinspect.domain import Annotation, Box
from autoinspect.evaluation.calibration import f1_threshold, precision_threshold
from autoinspect.evaluation.inputs import EvalImage, check_inputs
from autoinspect.evaluation.matching import iou_matrix, match_images, pool

logger = logging.getLogger(__name__)

CONFIDENT = 0.95
"""Where each class's trusted score lands after rescaling: cleanlab's own "high probability" threshold."""
CONFIDENT_PRECISION = 0.5
"""A class's boxes are trusted from its best-F1 score (its operating point out of fold) or, if higher, the lowest
score from which at least this share of its boxes match a label box: evidence against a label must be right
more often than not."""
MIN_SCORE = 0.01
SCALE = 640
ISSUE_THRESHOLD = 0.1
"""Box scores at or below this are reported as issues (cleanlab's ``issues_from_scores`` default)."""


class IssueKind(StrEnum):
    MISSING_BOX = "missing box"
    DAMAGE_LABELLED_CLEAN = "damage labelled clean"
    WRONG_CLASS = "wrong class"
    MISPLACED_BOX = "misplaced box"
    PHOTO_CLASSES = "photo classes disagree"


class LabelIssue(BaseModel):
    """One suspected error: where, what kind, and cleanlab's score for it (lower = more likely)."""

    image_id: str
    kind: IssueKind
    label: str
    """The class in question: the label box's (wrong class, misplaced), the predicted one (missing box, damage
    labelled clean), or for a photo-level issue the photo's labelled classes (``None`` for a clean label)."""
    box: Box | None = None
    """Normalised; ``None`` for a photo-level issue."""
    score: float = Field(ge=0.0, le=1.0)
    suggestion: str = ""
    """What the model thinks instead, in words (e.g. ``dent 0.81``)."""


class LabelIssueReport(BaseModel):
    photos: int
    classes: list[str]
    confident_scores: dict[str, float]
    """Per class, the out-of-sample box score trusted from (mapped to :data:`CONFIDENT`); 1 when none is."""
    quality: dict[str, float]
    """Per photo, cleanlab's object-detection label quality score (1 clean, 0 surely wrong)."""
    flagged: list[str]
    """Photos with at least one issue, worst label quality first."""
    issues: list[LabelIssue]
    """Every issue, lowest score first."""

    def counts(self) -> dict[str, int]:
        """Issues per kind, every kind listed."""
        return {kind.value: sum(issue.kind == kind for issue in self.issues) for kind in IssueKind}


def _rescale(scores: np.ndarray, confident: float) -> np.ndarray:
    """Monotone map of [0, 1] onto [0, 1] that sends ``confident`` to :data:`CONFIDENT`."""
    low = scores * (CONFIDENT / confident)
    high = CONFIDENT + (scores - confident) * ((1 - CONFIDENT) / max(1 - confident, 1e-9))
    return np.where(scores < confident, low, high).clip(0.0, 1.0)


def _scaled_size(image: EvalImage) -> tuple[float, float]:
    """The photo's sides at a :data:`SCALE`-pixel long side: the pixel space boxes are given to cleanlab in."""
    factor = SCALE / max(image.width, image.height)
    return image.width * factor, image.height * factor


def _pixels(boxes: Sequence[Annotation], image: EvalImage) -> np.ndarray:
    w, h = _scaled_size(image)
    return np.array([[a.box.x1 * w, a.box.y1 * h, a.box.x2 * w, a.box.y2 * h] for a in boxes], dtype=float).reshape(
        -1, 4
    )


def _box_from_pixels(row: np.ndarray, image: EvalImage) -> Box:
    w, h = _scaled_size(image)
    x1, y1, x2, y2 = (float(v) for v in row[:4])
    return Box(x1=x1 / w, y1=y1 / h, x2=x2 / w, y2=y2 / h)


def cleanlab_inputs(
    images: Sequence[EvalImage], classes: Sequence[str], confident: Mapping[str, float]
) -> tuple[list[dict[str, Any]], list[list[np.ndarray]]]:
    """Labels and predictions in cleanlab's object-detection format (``[x1, y1, x2, y2]`` pixels; per class a
    ``[M, 5]`` array with the rescaled score last)."""
    index = {name: i for i, name in enumerate(classes)}
    labels, predictions = [], []
    for image in images:
        labels.append(
            {
                "bboxes": _pixels(image.truth, image),
                "labels": np.array([index[a.label] for a in image.truth], dtype=int),
                "image_name": image.image_id,
            }
        )
        per_class = []
        for name in classes:
            found = [d for d in image.predictions if d.label == name]
            scores = _rescale(np.array([d.confidence for d in found], dtype=float), confident[name])
            per_class.append(np.column_stack([_pixels(found, image), scores]).reshape(-1, 5))
        predictions.append(per_class)
    return labels, predictions


@contextmanager
def _no_fork_in_cleanlab() -> Iterator[None]:
    """cleanlab's filter computes its per-class AP in a ``multiprocessing.Pool`` even for one process. Forking a
    process that already runs threads (torch's, a server's, a test runner's) can leave the child waiting forever
    on its queue's lock (seen in CI: the test hung in the pool's worker). A thread pool has the same ``starmap``
    and ``close`` without the fork, and with one process there is no parallelism to lose."""
    import cleanlab.object_detection.filter as cleanlab_filter

    forking = cleanlab_filter.Pool
    setattr(cleanlab_filter, "Pool", ThreadPool)  # noqa: B010 - a module global the library reads at call time
    try:
        yield
    finally:
        setattr(cleanlab_filter, "Pool", forking)  # noqa: B010


def _box_issues(
    images: Sequence[EvalImage],
    classes: Sequence[str],
    labels: list[dict[str, Any]],
    predictions: list[list[np.ndarray]],
) -> list[LabelIssue]:
    """On the photos cleanlab's ``find_label_issues`` flags, the boxes behind the flag: each box whose score of
    one kind is at most :data:`ISSUE_THRESHOLD`, and at least the photo's lowest-scoring box."""
    from cleanlab.object_detection.filter import find_label_issues as flag_images
    from cleanlab.object_detection.rank import (
        compute_badloc_box_scores,
        compute_overlooked_box_scores,
        compute_swap_box_scores,
    )

    with _no_fork_in_cleanlab():
        flagged = flag_images(labels, predictions)
    common = {"labels": labels, "predictions": predictions}
    overlooked = compute_overlooked_box_scores(**common)
    swap = compute_swap_box_scores(**common)
    badloc = compute_badloc_box_scores(**common)
    issues = []
    for n, image in enumerate(images):
        if not flagged[n]:
            continue
        candidates = []
        predicted = [(k, row) for k, rows in enumerate(predictions[n]) for row in rows]
        for (k, row), score in zip(predicted, overlooked[n], strict=True):
            kind = IssueKind.MISSING_BOX if image.truth else IssueKind.DAMAGE_LABELLED_CLEAN
            box = _box_from_pixels(row, image)
            candidates.append(
                LabelIssue(image_id=image.image_id, kind=kind, label=classes[k], box=box, score=_finite(score))
            )
        for j, annotation in enumerate(image.truth):
            for kind, scores in ((IssueKind.WRONG_CLASS, swap[n]), (IssueKind.MISPLACED_BOX, badloc[n])):
                suggestion = _nearest(annotation, labels[n]["bboxes"][j], predictions[n], classes, kind)
                candidates.append(
                    LabelIssue(
                        image_id=image.image_id,
                        kind=kind,
                        label=annotation.label,
                        box=annotation.box,
                        score=_finite(scores[j] if len(scores) > j else 1.0),
                        suggestion=suggestion,
                    )
                )
        candidates.sort(key=lambda issue: issue.score)
        issues += [c for i, c in enumerate(candidates) if i == 0 or c.score <= ISSUE_THRESHOLD]
    return issues


def _finite(score: float) -> float:
    """cleanlab leaves NaN where a box was not scored (e.g. no confident prediction): no evidence of an issue."""
    return float(score) if np.isfinite(score) else 1.0


def _nearest(
    annotation: Annotation, box: np.ndarray, prediction: list[np.ndarray], classes: Sequence[str], kind: IssueKind
) -> str:
    """The prediction overlapping a label box most: of another class for a swap, of its own for a bad location."""
    best, best_iou = "", 0.0
    for k, rows in enumerate(prediction):
        if (classes[k] == annotation.label) == (kind == IssueKind.WRONG_CLASS) or not len(rows):
            continue
        ious = iou_matrix(rows[:, :4], box[None, :])[:, 0]
        if ious.max() > best_iou:
            best_iou = float(ious.max())
            best = f"{classes[k]} (IoU {best_iou:.2f})"
    return best


def _photo_issues(images: Sequence[EvalImage], classes: Sequence[str]) -> list[LabelIssue]:
    """Photo-level: cleanlab's multi-label ranking of each photo's class set against the presence output."""
    if any(image.presence is None for image in images) or len(images) < 2 * len(classes):
        return []
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    given = [sorted({classes.index(a.label) for a in image.truth}) for image in images]
    probs = np.array([[image.presence[name] for name in classes] for image in images if image.presence])
    try:
        # n_jobs=1: cleanlab would fork a process pool, and a fork of a process that runs torch's threads can
        # deadlock (seen: the CI run hung in a futex wait); the ranking is a fraction of a second anyway
        flagged = find_label_issues(labels=given, pred_probs=probs, n_jobs=1)
    except ValueError as exc:  # e.g. a class never labelled: confident learning needs every class seen
        logger.warning("photo-level label check skipped: %s", exc)
        return []
    quality = get_label_quality_scores(labels=given, pred_probs=probs)
    issues = []
    for image, is_issue, score, row in zip(images, flagged, quality, probs, strict=True):
        if not is_issue:
            continue
        labelled = {a.label for a in image.truth}
        name = ", ".join(sorted(labelled)) or "None"
        kind = IssueKind.PHOTO_CLASSES if labelled else IssueKind.DAMAGE_LABELLED_CLEAN
        suggestion = ", ".join(f"{classes[k]} {row[k]:.2f}" for k in range(len(classes)))
        issues.append(
            LabelIssue(image_id=image.image_id, kind=kind, label=name, score=float(score), suggestion=suggestion)
        )
    return issues


def find_label_issues(images: Sequence[EvalImage], classes: Sequence[str]) -> LabelIssueReport:
    """Rank suspected label errors in ``images``, whose predictions must be out-of-sample (held-out folds)."""
    from cleanlab.object_detection.rank import get_label_quality_scores

    check_inputs(images, classes)
    table = match_images(images, classes)
    pooled = {c: pool([row[c] for row in table]) for c in classes}
    confident = {
        c: max(f1_threshold(pooled[c], MIN_SCORE), precision_threshold(pooled[c], CONFIDENT_PRECISION)) for c in classes
    }
    logger.info("box scores trusted from (out-of-fold precision %.2f): %s", CONFIDENT_PRECISION, confident)
    labels, predictions = cleanlab_inputs(images, classes, confident)
    quality = get_label_quality_scores(labels, predictions, verbose=False)
    issues = sorted(
        _box_issues(images, classes, labels, predictions) + _photo_issues(images, classes),
        key=lambda issue: issue.score,
    )
    with_issue = {issue.image_id for issue in issues}
    ranked = [images[int(i)].image_id for i in np.argsort(quality, kind="stable")]
    logger.info("label issues: %d in %d of %d photos", len(issues), len(with_issue), len(images))
    return LabelIssueReport(
        photos=len(images),
        classes=list(classes),
        confident_scores=confident,
        quality={image.image_id: float(q) for image, q in zip(images, quality, strict=True)},
        flagged=[image_id for image_id in ranked if image_id in with_issue],
        issues=issues,
    )
