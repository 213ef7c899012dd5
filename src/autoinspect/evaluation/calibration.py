"""Per-class score thresholds chosen on the val split, stored with the model (``ModelMetadata.score_thresholds``).

Two objectives:

- ``f1`` (default): each class independently gets the threshold that maximises its box F1 at IoU 0.5. F1 weighs
  a miss and a false alarm alike and needs no business input, so it is the safe default for every model.
  Candidates are the detection scores themselves (at least ``min_threshold``), the threshold being the lowest
  score kept; on equal F1 the higher threshold wins (fewer boxes for the same quality).
- ``damaged_caught``: the business asks "flag at least 95 % of damaged cars"; thresholds start from the F1
  ones and are lowered, one step at a time, on the class whose next step catches damaged photos at the
  smallest cost in newly flagged clean photos, until image-level ``damaged_caught`` reaches the target. F1
  thresholds that already reach it are kept: lowering further could only add false alarms. Greedy steps, not
  an exhaustive search, because the search space grows as the product of the classes' candidate counts.

Example:
    >>> calibrate_thresholds([], ["scratch"])
    {'scratch': 0.05}
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from enum import StrEnum

import numpy as np

from autoinspect.evaluation.inputs import EvalImage, check_inputs
from autoinspect.evaluation.matching import IOU50, BoolArray, FloatArray, PooledMatches, match_images, pool
from autoinspect.inference.postprocess import logit, logit_distance
from autoinspect.progress import rounded_figures

logger = logging.getLogger(__name__)


class CalibrationObjective(StrEnum):
    F1 = "f1"
    """Best box F1 per class: the default."""
    DAMAGED_CAUGHT = "damaged_caught"
    """Reach a share of damaged photos flagged, losing as few clean photos as the greedy steps can."""


def f1_threshold(pooled: PooledMatches, min_threshold: float) -> float:
    """The score threshold with the best box F1 at IoU 0.5 (ties: the higher threshold).

    With no detection at or above ``min_threshold`` it returns ``min_threshold``; with no true positive at any
    threshold every candidate ties at F1 0, so the highest score wins and only the top detections pass.
    """
    eligible = pooled.scores >= min_threshold
    scores = pooled.scores[eligible]
    if not scores.size:
        return min_threshold
    hits = np.cumsum(pooled.true_positive[IOU50][eligible])
    f1 = 2 * hits / (np.arange(1, len(scores) + 1) + pooled.n_truth)
    last_of_tie = np.append(scores[1:] != scores[:-1], True)
    best = int(np.argmax(f1[last_of_tie]))
    if f1[last_of_tie][best] == 0:
        logger.warning("no true positive at any threshold (%d truth boxes): F1 cannot choose", pooled.n_truth)
    return float(scores[last_of_tie][best])


def precision_threshold(pooled: PooledMatches, precision: float) -> float:
    """The lowest score from which at least ``precision`` of the boxes match a truth box at IoU 0.5; 1.0 when no
    cut-off reaches it (no box of this class is to be trusted)."""
    if not pooled.scores.size:
        return 1.0
    hits = np.cumsum(pooled.true_positive[IOU50])
    reached = np.flatnonzero(hits / np.arange(1, len(hits) + 1) >= precision)
    return float(pooled.scores[reached[-1]]) if reached.size else 1.0


def best_scores(images: Sequence[EvalImage], classes: Sequence[str]) -> FloatArray:
    """``[images, classes]`` highest detection score, -inf where a class has none: what decides a verdict."""
    table = np.full((len(images), len(classes)), -math.inf)
    column = {label: i for i, label in enumerate(classes)}
    for row, image in enumerate(images):
        for det in image.predictions:
            col = column[det.label]
            table[row, col] = max(table[row, col], det.confidence)
    return table


def _next_step(
    scores: FloatArray, damaged: BoolArray, flagged: BoolArray, min_threshold: float
) -> tuple[float, float, int] | None:
    """For one class: the highest lower threshold that catches a new damaged photo, its cost per photo caught,
    and the number caught; ``None`` when no step is left."""
    reachable = scores[damaged & ~flagged]
    reachable = reachable[reachable >= min_threshold]
    if not reachable.size:
        return None
    threshold = float(reachable.max())
    newly = (scores >= threshold) & ~flagged
    gained = int(np.count_nonzero(newly & damaged))
    return threshold, np.count_nonzero(newly & ~damaged) / gained, gained


def lower_until_caught(
    scores: FloatArray, damaged: BoolArray, thresholds: FloatArray, target: float, min_threshold: float
) -> FloatArray:
    """Lower per-class thresholds greedily until the share of damaged photos flagged reaches ``target``."""
    current = thresholds.copy()
    if not damaged.any():
        logger.warning("no damaged photos: damaged_caught is undefined, thresholds kept")
        return current
    while True:
        flagged = np.asarray((scores >= current).any(axis=1))
        caught = np.count_nonzero(flagged & damaged) / np.count_nonzero(damaged)
        if caught >= target:
            return current
        steps = {}
        for column in range(len(current)):
            step = _next_step(scores[:, column], damaged, flagged, min_threshold)
            if step is not None:
                steps[column] = step
        if not steps:
            logger.warning("damaged_caught %.3f stays below the target %.3f at the lowest thresholds", caught, target)
            return current
        cheapest = min(steps, key=lambda column: (steps[column][1], -steps[column][2]))
        current[cheapest] = steps[cheapest][0]


def calibrate_thresholds(
    images: Sequence[EvalImage],
    classes: Sequence[str],
    *,
    min_threshold: float = 0.05,
    objective: CalibrationObjective | str = CalibrationObjective.F1,
    target_damaged_caught: float | None = None,
) -> dict[str, float]:
    """Choose a score threshold per class on these (val) photos; see the module docstring for the objectives.

    ``target_damaged_caught`` (in (0, 1]) is required by, and only read by, the ``damaged_caught`` objective.
    """
    check_inputs(images, classes)
    target = _checked_target(CalibrationObjective(objective), target_damaged_caught)
    table = match_images(images, classes)
    chosen = {label: f1_threshold(pool([row[label] for row in table]), min_threshold) for label in classes}
    if target is not None:
        chosen = _for_target(images, classes, chosen, target, min_threshold)
    logger.info("calibrated thresholds (%s): %s", CalibrationObjective(objective).value, chosen)
    return chosen


def calibrate_presence(images: Sequence[EvalImage], classes: Sequence[str]) -> dict[str, float] | None:
    """Per class, the presence threshold with the best presence F1 on these (val) photos (ties: the higher);
    ``None`` when a photo has no presence (the model has no presence output).

    Example:
        >>> from autoinspect.domain import Annotation, Box
        >>> dent = [Annotation(label="dent", box=Box(x1=0.1, y1=0.1, x2=0.2, y2=0.2))]
        >>> calibrate_presence([EvalImage(image_id="a", width=9, height=9, truth=dent, presence={"dent": 0.7}),
        ...                     EvalImage(image_id="b", width=9, height=9, presence={"dent": 0.4})], ["dent"])
        {'dent': 0.7}
    """
    check_inputs(images, classes)
    if not images or any(image.presence is None for image in images):
        return None
    chosen = {}
    for label in classes:
        values = np.array([image.presence[label] for image in images if image.presence is not None])
        shows = np.array([any(box.label == label for box in image.truth) for image in images])
        candidates = np.unique(values)[::-1]  # high to low, so argmax keeps the higher threshold on ties
        f1 = [2 * np.sum(shows & (values >= t)) / max(np.sum(values >= t) + np.sum(shows), 1) for t in candidates]
        chosen[label] = float(candidates[int(np.argmax(f1))])
    logger.info("calibrated presence thresholds (presence F1): %s", rounded_figures(chosen))
    return chosen


VERDICT_OFFSETS = np.round(np.linspace(-4.0, 4.0, 161), 2)
"""Common shifts of every class's presence threshold tried by :func:`balance_verdict`, in logits (steps of 0.05)."""


def balance_verdict(
    images: Sequence[EvalImage], classes: Sequence[str], thresholds: Mapping[str, float]
) -> dict[str, float]:
    """The presence thresholds shifted together, in logits, to the verdict's best balance on these (val) photos.

    Per-class F1 counts a false alarm on a clean car no more than one on a photo showing the other class, and
    clean photos are a minority, so F1 thresholds flag clean cars freely. The verdict ("None" or damage) is what
    a person reads, and its two errors are judged apart (damaged photos caught, clean photos answered "None"), so
    one common shift keeps the classes' F1-chosen ratios and picks the point where caught + clean "None" (Youden's
    J) is best; on a plateau of equal J the middle shift, since val has few clean photos. Photos all damaged or
    all clean leave the thresholds as they are.
    """
    damaged = np.array([image.damaged for image in images], dtype=bool)
    if not images or damaged.all() or not damaged.any() or any(image.presence is None for image in images):
        return dict(thresholds)
    presence = np.array([[(image.presence or {})[label] for label in classes] for image in images])
    base = logit([thresholds[label] for label in classes])
    balance = []
    for offset in VERDICT_OFFSETS:
        flagged: BoolArray = np.asarray((presence >= _sigmoid(base + offset)).any(axis=1), dtype=bool)
        balance.append(float(np.mean(flagged[damaged]) + np.mean(~flagged[~damaged])))
    plateau = VERDICT_OFFSETS[np.asarray(np.isclose(balance, max(balance)), dtype=bool)]
    offset = float(plateau[len(plateau) // 2])
    if offset == 0:
        return dict(thresholds)
    shifted = {label: float(t) for label, t in zip(classes, _sigmoid(base + offset), strict=True)}
    logger.info("verdict balance: presence thresholds shifted by %+.2f logits to %s", offset, shifted)
    return shifted


def calibrate_review_margin(
    images: Sequence[EvalImage], classes: Sequence[str], thresholds: Mapping[str, float], share: float
) -> float | None:
    """The margin, in logits around the presence thresholds, within which ``share`` of these (val) photos fall:
    the photos a person is asked to look at. ``None`` without presence (box models keep their review band).

    A fixed band on any score flagged 13 of 15 answers in a first trial, clean cars included; a margin sized on
    val sends the chosen share, and it is the photos nearest a decision that go.

    Example:
        >>> images = [EvalImage(image_id=str(i), width=9, height=9, presence={"dent": p})
        ...           for i, p in enumerate([0.05, 0.45, 0.55, 0.95])]
        >>> margin = calibrate_review_margin(images, ["dent"], {"dent": 0.5}, share=0.5)
        >>> round(margin, 3)
        2.944
    """
    if not images or any(image.presence is None for image in images):
        return None
    distances = sorted(
        min(logit_distance((image.presence or {})[label], thresholds[label]) for label in classes) for image in images
    )
    count = round(share * len(distances))
    margin = distances[count] if count < len(distances) else distances[-1] + 1e-6
    logger.info("review margin %.3f logits: %d of %d val photos sent for review", margin, count, len(distances))
    return float(margin)


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1 / (1 + np.exp(-x)))


def _checked_target(objective: CalibrationObjective, target: float | None) -> float | None:
    """The damaged-caught target when the objective uses one, refused early when it is missing or out of range."""
    if objective is CalibrationObjective.F1:
        return None
    if target is None or not 0.0 < target <= 1.0:
        raise ValueError(f"the damaged_caught objective needs target_damaged_caught in (0, 1], got {target}")
    return target


def _for_target(
    images: Sequence[EvalImage],
    classes: Sequence[str],
    start: Mapping[str, float],
    target: float,
    min_threshold: float,
) -> dict[str, float]:
    damaged = np.array([image.damaged for image in images], dtype=bool)
    lowered = lower_until_caught(
        best_scores(images, classes), damaged, np.array([start[c] for c in classes]), target, min_threshold
    )
    return {label: float(value) for label, value in zip(classes, lowered, strict=True)}
