"""Evaluation stage: COCO mAP, operating-point P/R/F1, image-level verdict metrics, slices, threshold calibration
and the error gallery, in pure numpy so that it runs wherever the served model runs.

Example:
    >>> from autoinspect.evaluation import MetricName, metric_key
    >>> metric_key(MetricName.RECALL, "dent")
    'recall/dent'
"""

from autoinspect.evaluation.average_precision import ClassAveragePrecision, DetectionMetrics, PRCurve
from autoinspect.evaluation.buckets import (
    BOX_SIZE_BUCKETS,
    BOX_SIZE_EDGES_PX,
    BRIGHTNESS_BUCKETS,
    BRIGHTNESS_EDGES,
    box_size_bucket,
    brightness_bucket,
)
from autoinspect.evaluation.calibration import CalibrationObjective, calibrate_thresholds
from autoinspect.evaluation.error_cases import ErrorBox, ErrorCase, ErrorKind, error_cases
from autoinspect.evaluation.evaluator import evaluate
from autoinspect.evaluation.image_level import ClassImageMetrics, ImageLevelMetrics
from autoinspect.evaluation.inputs import EvalImage
from autoinspect.evaluation.metric_names import MetricName, metric_key, slice_metric_key
from autoinspect.evaluation.operating_point import ClassOperatingPoint
from autoinspect.evaluation.result import EvaluationResult
from autoinspect.evaluation.slices import SliceMetrics

__all__ = [
    "BOX_SIZE_BUCKETS",
    "BOX_SIZE_EDGES_PX",
    "BRIGHTNESS_BUCKETS",
    "BRIGHTNESS_EDGES",
    "CalibrationObjective",
    "ClassAveragePrecision",
    "ClassImageMetrics",
    "ClassOperatingPoint",
    "DetectionMetrics",
    "ErrorBox",
    "ErrorCase",
    "ErrorKind",
    "EvalImage",
    "EvaluationResult",
    "ImageLevelMetrics",
    "MetricName",
    "PRCurve",
    "SliceMetrics",
    "box_size_bucket",
    "brightness_bucket",
    "calibrate_thresholds",
    "error_cases",
    "evaluate",
    "metric_key",
    "slice_metric_key",
]
