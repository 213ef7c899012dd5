"""Per-photo outcomes computed once, summarised for the whole set and for every slice alike.

Slices must be computed the same way as the headline figures, or a slice that holds every photo would disagree
with the total; both go through :meth:`ImageOutcomes.summarise`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from autoinspect.domain import Verdict
from autoinspect.evaluation.image_level import (
    ImageLevelMetrics,
    image_level_metrics,
    predicted_verdict,
    truth_verdict,
)
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.matching import IntArray, MatchTable
from autoinspect.evaluation.operating_point import ClassOperatingPoint, count_table, operating_points


@dataclass(frozen=True, slots=True)
class ImageOutcomes:
    """Box counts and verdicts of every photo at fixed thresholds, in input order."""

    classes: tuple[str, ...]
    thresholds: Mapping[str, float]
    counts: IntArray
    """``[images, classes, 3]`` TP/FP/FN."""
    truth: tuple[Verdict, ...]
    predicted: tuple[Verdict, ...]

    @classmethod
    def build(
        cls,
        images: Sequence[EvalImage],
        table: MatchTable,
        classes: Sequence[str],
        thresholds: Mapping[str, float],
        presence_thresholds: Mapping[str, float] | None = None,
    ) -> ImageOutcomes:
        return cls(
            classes=tuple(classes),
            thresholds=dict(thresholds),
            counts=count_table(table, classes, thresholds),
            truth=tuple(truth_verdict(image) for image in images),
            predicted=tuple(predicted_verdict(image, thresholds, presence_thresholds) for image in images),
        )

    def summarise(self, members: Sequence[int]) -> tuple[dict[str, ClassOperatingPoint], ImageLevelMetrics]:
        """Operating point and verdict metrics of the photos at these positions."""
        rows = list(members)
        return (
            operating_points(self.counts[rows], self.classes, self.thresholds),
            image_level_metrics([self.truth[i] for i in rows], [self.predicted[i] for i in rows], self.classes),
        )
