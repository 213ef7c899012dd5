"""The outcome of one evaluation: everything a report, a gallery and a promotion gate read, as one JSON document.

``model_dump_json()`` stores it as a run artifact and ``model_validate_json`` reads it back unchanged;
``flat_metrics()`` is the view that trackers log and gates compare.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from autoinspect.evaluation.average_precision import DetectionMetrics, PRCurve
from autoinspect.evaluation.error_cases import ErrorCase
from autoinspect.evaluation.image_level import ImageLevelMetrics
from autoinspect.evaluation.metric_names import MetricName, metric_key, slice_metric_key
from autoinspect.evaluation.operating_point import ClassOperatingPoint
from autoinspect.evaluation.slices import SliceMetrics

FlatValues = dict[str, float | None]


class EvaluationResult(BaseModel):
    """All metrics of one model on one set of photos, at one set of thresholds."""

    classes: list[str]
    thresholds: dict[str, float]
    """The per-class score thresholds of the operating point, verdicts, slices and error cases."""
    presence_thresholds: dict[str, float] | None = None
    """Per-class presence thresholds that decided the verdicts (presence models), else ``None``."""
    images: int
    detection: DetectionMetrics
    """COCO AP per class and mAP: threshold-free, comparable with any published figure."""
    operating_point: dict[str, ClassOperatingPoint]
    """Box precision/recall/F1 per class at ``thresholds``, IoU 0.5."""
    image_level: ImageLevelMetrics
    """Verdict metrics ("None" or the classes found) at ``thresholds``."""
    slices: list[SliceMetrics]
    """Operating point and verdict metrics per photo attribute value."""
    pr_curves: dict[str, PRCurve]
    """PR curve at IoU 0.5 for each class that has ground truth."""
    error_cases: list[ErrorCase]
    """The worst photos, worst first, for the error gallery."""

    def flat_metrics(self) -> dict[str, float]:
        """Every defined figure under its :mod:`metric_names` key, for MLflow and promotion gates.

        Undefined figures (``None``: a class without truth, a slice without clean photos) are left out.
        """
        flat: FlatValues = {
            metric_key(MetricName.MAP50): self.detection.map50,
            metric_key(MetricName.MAP75): self.detection.map75,
            metric_key(MetricName.MAP50_95): self.detection.map50_95,
        }
        for label, ap in self.detection.per_class.items():
            flat[metric_key(MetricName.AP50, label)] = ap.ap50
            flat[metric_key(MetricName.AP75, label)] = ap.ap75
            flat[metric_key(MetricName.AP50_95, label)] = ap.ap50_95
        flat |= _point_metrics(self.operating_point, self.image_level)
        for group in self.slices:
            points = _point_metrics(group.operating_point, group.image_level)
            flat |= {slice_metric_key(group.key, group.value, key): value for key, value in points.items()}
        return {key: value for key, value in flat.items() if value is not None}


def _point_metrics(operating_point: Mapping[str, ClassOperatingPoint], image_level: ImageLevelMetrics) -> FlatValues:
    """The threshold-dependent figures, the same for the whole set and for a slice."""
    flat: FlatValues = {
        metric_key(MetricName.DAMAGED_CAUGHT): image_level.damaged_caught,
        metric_key(MetricName.CLEAN_NONE_RATE): image_level.clean_none_rate,
        metric_key(MetricName.VERDICT_EXACT_ACCURACY): image_level.verdict_exact_accuracy,
    }
    for label, point in operating_point.items():
        flat[metric_key(MetricName.PRECISION, label)] = point.precision
        flat[metric_key(MetricName.RECALL, label)] = point.recall
        flat[metric_key(MetricName.F1, label)] = point.f1
    for label, verdicts in image_level.per_class.items():
        flat[metric_key(MetricName.IMAGE_PRECISION, label)] = verdicts.precision
        flat[metric_key(MetricName.IMAGE_RECALL, label)] = verdicts.recall
        flat[metric_key(MetricName.IMAGE_F1, label)] = verdicts.f1
    return flat
