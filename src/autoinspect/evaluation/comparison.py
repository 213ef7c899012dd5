"""Two models compared photo by photo: where they disagree, and which of them the truth sides with.

Aggregate figures say *that* a candidate differs from the model in service; a person deciding a promotion needs
*what* changed: the photos whose verdict it fixes or breaks, and the boxes it adds or drops. Each photo where
the two answers differ becomes one :class:`PhotoDifference`, ranked so the costliest come first: verdicts the
candidate gets wrong that the baseline got right (regressions), then verdicts it fixes, then verdicts that
change while both are wrong, then photos where only the boxes differ. A box counts as kept when the other model
reports a box of the same class overlapping it by ``min_iou`` or more.

Example:
    >>> from autoinspect.domain import Box, Detection, Verdict
    >>> dent = Detection(label="dent", box=Box(x1=0.1, y1=0.1, x2=0.3, y2=0.3), confidence=0.8)
    >>> none, dented = Answer(Verdict(), []), Answer(Verdict.from_labels(["dent"]), [dent])
    >>> compare_photo("p1", Verdict.from_labels(["dent"]), none, dented).kind
    <DifferenceKind.FIXED: 'fixed'>
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from autoinspect.domain import Detection, Verdict

MIN_IOU = 0.5


class DifferenceKind(StrEnum):
    """How a photo's answers differ, costliest first (the order of :data:`RANK`)."""

    REGRESSED = "regressed"
    """The baseline's verdict was right and the candidate's is wrong."""
    FIXED = "fixed"
    """The baseline's verdict was wrong and the candidate's is right."""
    VERDICT_CHANGED = "verdict_changed"
    """The verdicts differ and neither matches the truth (or there is no truth)."""
    BOXES_CHANGED = "boxes_changed"
    """Same verdict, different boxes."""


RANK = {kind: rank for rank, kind in enumerate(DifferenceKind)}


@dataclass(frozen=True)
class Answer:
    """What one model answered for a photo: its verdict and the boxes it reported."""

    verdict: Verdict
    detections: Sequence[Detection]


class PhotoDifference(BaseModel):
    """One photo where the two models answer differently."""

    model_config = ConfigDict(frozen=True)

    image_id: str
    kind: DifferenceKind
    truth: list[str] | None
    """The truth's verdict (``["None"]`` or classes); ``None`` for unlabelled photos."""
    baseline: list[str]
    candidate: list[str]
    gained: list[Detection]
    """Boxes the candidate reports that no baseline box of the same class overlaps."""
    lost: list[Detection]
    """Baseline boxes that no candidate box of the same class overlaps."""
    baseline_detections: list[Detection]
    candidate_detections: list[Detection]


class ModelComparison(BaseModel):
    """The photo-by-photo comparison of a candidate with a baseline, differences costliest first."""

    model_config = ConfigDict(frozen=True)

    baseline: str
    candidate: str
    photos: int
    identical: int
    """Photos answered with the same verdict and the same boxes (by class and overlap)."""
    counts: dict[DifferenceKind, int]
    differences: list[PhotoDifference]


def _unmatched(boxes: Sequence[Detection], others: Sequence[Detection], min_iou: float) -> list[Detection]:
    return [
        box
        for box in boxes
        if not any(other.label == box.label and other.box.iou(box.box) >= min_iou for other in others)
    ]


def compare_photo(
    image_id: str, truth: Verdict | None, baseline: Answer, candidate: Answer, min_iou: float = MIN_IOU
) -> PhotoDifference | None:
    """The difference of two answers for one photo, or ``None`` when they agree on verdict and boxes."""
    gained = _unmatched(candidate.detections, baseline.detections, min_iou)
    lost = _unmatched(baseline.detections, candidate.detections, min_iou)
    if baseline.verdict == candidate.verdict and not gained and not lost:
        return None
    if baseline.verdict == candidate.verdict:
        kind = DifferenceKind.BOXES_CHANGED
    elif truth is not None and baseline.verdict == truth:
        kind = DifferenceKind.REGRESSED
    elif truth is not None and candidate.verdict == truth:
        kind = DifferenceKind.FIXED
    else:
        kind = DifferenceKind.VERDICT_CHANGED
    return PhotoDifference(
        image_id=image_id,
        kind=kind,
        truth=None if truth is None else truth.names,
        baseline=baseline.verdict.names,
        candidate=candidate.verdict.names,
        gained=gained,
        lost=lost,
        baseline_detections=list(baseline.detections),
        candidate_detections=list(candidate.detections),
    )


def compare_models(
    baseline_name: str,
    candidate_name: str,
    photos: Sequence[tuple[str, Verdict | None, Answer, Answer]],
    min_iou: float = MIN_IOU,
) -> ModelComparison:
    """Compare ``(image id, truth, baseline answer, candidate answer)`` photo by photo."""
    found = [compare_photo(image_id, truth, a, b, min_iou) for image_id, truth, a, b in photos]
    differences = sorted(
        (d for d in found if d is not None),
        key=lambda d: (RANK[d.kind], -(len(d.gained) + len(d.lost)), d.image_id),
    )
    counts = Counter(d.kind for d in differences)
    return ModelComparison(
        baseline=baseline_name,
        candidate=candidate_name,
        photos=len(photos),
        identical=len(photos) - len(differences),
        counts={kind: counts[kind] for kind in DifferenceKind},
        differences=differences,
    )
