"""From the model's raw rows to the answer for one photo: candidates, thresholded detections, verdict, review flag.

Two lists come out because two consumers need different things: evaluation sweeps every score for average
precision (``candidates``, everything above :data:`CANDIDATE_FLOOR` after NMS), while the API answers with what
passes the operating thresholds (``detections``). Both come from the same decoding, so offline metrics describe
what is served.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from autoinspect.domain import Box, Detection, Verdict
from autoinspect.inference.letterbox import LetterboxTransform
from autoinspect.onnx_metadata import ModelFileError

CANDIDATE_FLOOR = 0.001
"""Scores below this are not kept even as candidates: the floor Ultralytics and COCO evaluations use for AP."""
LOGIT_CLIP = 1e-6
"""Probabilities are clipped to ``[LOGIT_CLIP, 1 - LOGIT_CLIP]`` before log-odds, so saturated outputs stay finite."""
MAX_DETECTIONS = 300
"""Most candidates kept per photo after NMS, best first (Ultralytics' ``max_det``); bounds the NMS work too."""

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]


class StageTimes(BaseModel):
    """Milliseconds spent per step; in a batch the steps are shared, so each photo gets an even share."""

    model_config = ConfigDict(frozen=True)

    pre_ms: float
    run_ms: float
    post_ms: float


class Prediction(BaseModel):
    """The Detector's answer for one photo.

    ``needs_review`` is true when any candidate's score lies in the model's ``review_band`` ``[lo, hi)``: a
    score there means the model is unsure about a region, whether that region made it into ``detections``
    (damage reported on weak evidence) or not (damage possibly missed). Scores below ``lo`` count as confidently
    nothing, scores at or above ``hi`` as confidently damage, so one unsure region is enough to send the photo to
    an inspector even when another region is certain. For a presence model the band applies to the presence
    probabilities instead: the verdict comes from them.
    """

    model_config = ConfigDict(frozen=True)

    width: int
    """Of the original photo, in pixels; boxes are normalised to it."""
    height: int
    detections: list[Detection]
    """The candidates that pass their class's operating threshold, best first: what the API reports."""
    candidates: list[Detection]
    """Every detection after NMS above :data:`CANDIDATE_FLOOR`, best first: what average precision needs."""
    verdict: Verdict
    """The damage classes among ``detections``, or ``"None"``; for a presence model, the classes whose presence
    reaches its threshold (``detections`` then hold those classes' boxes, see :func:`explained_detections`)."""
    needs_review: bool
    max_score: float = Field(ge=0.0, le=1.0)
    """The photo-level confidence that it shows damage: the best candidate's score (0 when there is none), or
    for a presence model the highest presence probability."""
    presence: dict[str, float] | None = None
    """Per class, the probability that the photo shows it; only for a model with the ``presence`` output (which
    decides the verdict once its thresholds are calibrated)."""
    timing: StageTimes

    @property
    def latency_ms(self) -> float:
        """Letterbox, model run and post-processing; decoding the file is not included."""
        return self.timing.pre_ms + self.timing.run_ms + self.timing.post_ms


def decode_rows(
    rows: npt.NDArray[np.float32],
    transform: LetterboxTransform,
    *,
    classes: Sequence[str],
    iou_threshold: float,
    floor: float = CANDIDATE_FLOOR,
) -> list[Detection]:
    """One photo's ``[K, 6]`` model rows as candidate detections on the original photo, best first.

    Steps: drop padding (score 0), rows below ``floor`` and rows with non-finite numbers; map to original pixels
    and clip; drop boxes left without area (they lay in the padding); class-wise NMS; normalise.
    """
    kept = _select(rows, floor, len(classes))
    boxes = transform.to_original(kept[:, :4])
    visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, scores, class_ids = boxes[visible], kept[visible, 4], kept[visible, 5].astype(np.intp)
    order = nms(boxes, scores, class_ids, iou_threshold)
    width, height = transform.width, transform.height
    return [
        Detection(label=classes[class_id], box=Box.from_pixels(x1, y1, x2, y2, width, height), confidence=score)
        for (x1, y1, x2, y2), score, class_id in zip(
            boxes[order].tolist(), scores[order].tolist(), class_ids[order].tolist(), strict=True
        )
    ]


def nms(
    boxes: FloatArray,
    scores: npt.NDArray[np.floating],
    class_ids: IndexArray,
    iou_threshold: float,
    max_keep: int = MAX_DETECTIONS,
) -> IndexArray:
    """Greedy class-wise non-maximum suppression; returns the indices kept, best score first.

    A box is dropped when it overlaps a better box of the same class with IoU above ``iou_threshold``; boxes of
    different classes never suppress each other, since a dent under a scratch is two findings.

    Example:
        >>> boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 10]], dtype=float)
        >>> nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([0, 0, 1]), 0.5).tolist()
        [0, 2]
    """
    order = np.argsort(-scores, kind="stable")
    # Shifting each class to its own region of the plane makes one pass class-wise (as torchvision's batched_nms).
    span = boxes.max(initial=0.0) - boxes.min(initial=0.0) + 1.0
    shifted = boxes[order] + (class_ids[order] * span)[:, None]
    x1, y1, x2, y2 = (np.ascontiguousarray(side) for side in shifted.T)
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(order.size, dtype=bool)
    kept: list[int] = []
    for best in range(order.size):
        if not alive[best]:
            continue
        kept.append(best)
        if len(kept) == max_keep:
            break
        # Only the boxes after ``best`` can still be taken: contiguous slices, no copies.
        rest = slice(best + 1, None)
        width = np.maximum(np.minimum(x2[rest], x2[best]) - np.maximum(x1[rest], x1[best]), 0.0)
        height = np.maximum(np.minimum(y2[rest], y2[best]) - np.maximum(y1[rest], y1[best]), 0.0)
        overlap = width * height
        alive[rest] &= overlap <= iou_threshold * (areas[rest] + areas[best] - overlap)  # IoU <= threshold
    return order[kept]


def apply_thresholds(detections: Iterable[Detection], thresholds: Mapping[str, float]) -> list[Detection]:
    """The detections whose score reaches their class's operating threshold (``score >= threshold``)."""
    return [detection for detection in detections if detection.confidence >= thresholds[detection.label]]


def needs_review(candidates: Iterable[Detection], review_band: tuple[float, float]) -> bool:
    """Whether any candidate's score lies in ``[lo, hi)``: the rule documented on :class:`Prediction`."""
    return in_review_band((candidate.confidence for candidate in candidates), review_band)


def in_review_band(scores: Iterable[float], review_band: tuple[float, float]) -> bool:
    """Whether any score (a box's, or a presence probability) lies in ``[lo, hi)``."""
    low, high = review_band
    return any(low <= score < high for score in scores)


def near_threshold(presence: Mapping[str, float], thresholds: Mapping[str, float], margin: float) -> bool:
    """Whether any class's presence lies within ``margin`` logits of its threshold: the model is unsure."""
    return any(logit_distance(value, thresholds[label]) < margin for label, value in presence.items())


def logit_distance(probability: float, threshold: float) -> float:
    """``|logit(p) - logit(t)|``: how far a probability lies from its threshold, in the model's own units."""
    return float(abs(logit(probability) - logit(threshold)))


def logit(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The log-odds of ``p``, clipped away from 0 and 1 so that saturated outputs stay finite."""
    clipped = np.clip(np.asarray(p, dtype=np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.asarray(np.log(clipped / (1 - clipped)))


def presence_by_class(classes: Sequence[str], row: npt.NDArray[np.floating]) -> dict[str, float]:
    """One photo's ``presence`` output row as ``{class: probability}``, clipped to [0, 1]."""
    return dict(zip(classes, np.clip(row, 0.0, 1.0).tolist(), strict=True))


def presence_labels(presence: Mapping[str, float], thresholds: Mapping[str, float]) -> list[str]:
    """The classes a presence model's verdict names: those whose probability reaches their threshold."""
    return [label for label, value in presence.items() if value >= thresholds[label]]


def explained_detections(
    candidates: Sequence[Detection], thresholds: Mapping[str, float], named: Iterable[str]
) -> list[Detection]:
    """The boxes of a presence model's answer: for each class the verdict names, its boxes that pass their
    threshold, or its best candidate when none does (so every named damage is located); none for other classes."""
    named = set(named)
    passing = [detection for detection in apply_thresholds(candidates, thresholds) if detection.label in named]
    located = {detection.label for detection in passing}
    best = {}
    for candidate in candidates:  # best first
        if candidate.label in named - located and candidate.label not in best:
            best[candidate.label] = candidate
    return sorted([*passing, *best.values()], key=lambda detection: -detection.confidence)


def build_prediction(
    candidates: list[Detection],
    transform: LetterboxTransform,
    *,
    thresholds: Mapping[str, float],
    review_band: tuple[float, float],
    timing: StageTimes,
    presence: Mapping[str, float] | None = None,
    presence_thresholds: Mapping[str, float] | None = None,
    review_margin: float | None = None,
) -> Prediction:
    """Assemble the answer for one photo from its candidates, so every field derives from them one way; with
    ``presence`` and its calibrated ``presence_thresholds`` the verdict and review flag come from presence (the
    flag from ``review_margin`` around the thresholds when it is calibrated, else from the review band)."""
    if presence is None or presence_thresholds is None:
        detections = apply_thresholds(candidates, thresholds)
        verdict = Verdict.from_labels(detection.label for detection in detections)
        review = needs_review(candidates, review_band)
        confidence = max((candidate.confidence for candidate in candidates), default=0.0)
    else:
        named = presence_labels(presence, presence_thresholds)
        detections = explained_detections(candidates, thresholds, named)
        verdict = Verdict.from_labels(named)
        review = (
            near_threshold(presence, presence_thresholds, review_margin)
            if review_margin is not None
            else in_review_band(presence.values(), review_band)
        )
        confidence = max(presence.values(), default=0.0)
    return Prediction(
        width=transform.width,
        height=transform.height,
        detections=detections,
        candidates=candidates,
        verdict=verdict,
        needs_review=review,
        max_score=confidence,
        presence=dict(presence) if presence is not None else None,
        timing=timing,
    )


def _select(rows: npt.NDArray[np.float32], floor: float, class_count: int) -> npt.NDArray[np.float32]:
    """The rows worth decoding; a class id or score outside the contract is a broken model, not a bad photo."""
    scores = rows[:, 4]
    kept = rows[(scores > 0) & (scores >= floor) & np.isfinite(rows).all(axis=1)]
    class_ids = kept[:, 5]
    if kept.size and (
        kept[:, 4].max() > 1 or class_ids.min() < 0 or class_ids.max() >= class_count or (class_ids % 1).any()
    ):
        raise ModelFileError(
            f"model output breaks the contract: scores must be in [0, 1] (max {kept[:, 4].max():.4g}) and class ids "
            f"whole numbers in [0, {class_count}) (got {sorted(set(class_ids.tolist()))[:10]})"
        )
    return kept
