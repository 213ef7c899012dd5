"""Photo-level verdict metrics: what the business reads.

An inspection is decided per photo, not per box: a photo is "None" when no detection passes its class
threshold, else the set of classes that do. ``damaged_caught`` is the share of damaged cars flagged before
stock intake (image-level recall); ``clean_none_rate`` the share of clean cars left alone (1 - false alarms).

Example:
    >>> from autoinspect.domain import Verdict
    >>> m = image_level_metrics([Verdict.from_labels(["dent"]), Verdict()], [Verdict(), Verdict()], ["dent"])
    >>> m.damaged_caught, m.clean_none_rate
    (0.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel

from autoinspect.domain import Verdict
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.rates import rate
from autoinspect.inference.postprocess import presence_labels


class ClassImageMetrics(BaseModel):
    """Whether photos showing a class are flagged with it (box positions ignored)."""

    images_with_class: int
    """Photos whose truth has the class."""
    images_flagged: int
    """Photos whose verdict has the class."""
    images_both: int
    precision: float | None
    recall: float | None
    f1: float | None
    """Presence F1: does the photo show this class, and does the verdict say so."""


class ImageLevelMetrics(BaseModel):
    """Verdict metrics over a group of photos; rates are ``None`` when their group is empty."""

    images: int
    damaged_images: int
    """Photos with at least one truth box."""
    damaged_caught: float | None
    """Share of damaged photos whose verdict is not "None", whatever classes it names: image-level recall."""
    clean_images: int
    clean_none_rate: float | None
    """Share of clean photos whose verdict is "None": 1 minus the false-alarm rate on clean cars."""
    verdict_exact_accuracy: float | None
    """Share of photos whose verdict names exactly the truth's classes ("None" for "None")."""
    per_class: dict[str, ClassImageMetrics]


def truth_verdict(image: EvalImage) -> Verdict:
    """The verdict a perfect model would give."""
    return Verdict.from_labels(box.label for box in image.truth)


def predicted_verdict(
    image: EvalImage, thresholds: Mapping[str, float], presence_thresholds: Mapping[str, float] | None = None
) -> Verdict:
    """The served verdict: with presence thresholds and the photo's presence, the classes whose presence reaches
    them (the Detector's rule for presence models); otherwise the classes with a detection scoring at least the
    class threshold."""
    if presence_thresholds is not None and image.presence is not None:
        return Verdict.from_labels(presence_labels(image.presence, presence_thresholds))
    return Verdict.from_labels(det.label for det in image.predictions if det.confidence >= thresholds[det.label])


def _class_metrics(label: str, truths: Sequence[Verdict], predicted: Sequence[Verdict]) -> ClassImageMetrics:
    in_truth = [label in verdict.labels for verdict in truths]
    flagged = [label in verdict.labels for verdict in predicted]
    both = sum(t and p for t, p in zip(in_truth, flagged, strict=True))
    return ClassImageMetrics(
        images_with_class=sum(in_truth),
        images_flagged=sum(flagged),
        images_both=both,
        precision=rate(both, sum(flagged)),
        recall=rate(both, sum(in_truth)),
        f1=rate(2 * both, sum(flagged) + sum(in_truth)),
    )


def image_level_metrics(
    truths: Sequence[Verdict], predicted: Sequence[Verdict], classes: Sequence[str]
) -> ImageLevelMetrics:
    """Compare truth and predicted verdicts photo by photo (both lists in the same order)."""
    pairs = list(zip(truths, predicted, strict=True))
    damaged = [p for t, p in pairs if not t.is_none]
    clean = [p for t, p in pairs if t.is_none]
    return ImageLevelMetrics(
        images=len(pairs),
        damaged_images=len(damaged),
        damaged_caught=rate(sum(not p.is_none for p in damaged), len(damaged)),
        clean_images=len(clean),
        clean_none_rate=rate(sum(p.is_none for p in clean), len(clean)),
        verdict_exact_accuracy=rate(sum(t == p for t, p in pairs), len(pairs)),
        per_class={label: _class_metrics(label, truths, predicted) for label in classes},
    )
