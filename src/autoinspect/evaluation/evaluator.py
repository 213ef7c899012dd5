"""The evaluator's entry point: one call from predictions and truth to an :class:`EvaluationResult`.

The caller runs the model through ``inference.Detector`` (the served path) and hands over every detection with
its score; thresholds are applied here, so AP and the operating point come from the same predictions.

Example:
    >>> from autoinspect.domain import Annotation, Box, Detection
    >>> box = Box(x1=0.1, y1=0.1, x2=0.4, y2=0.3)
    >>> image = EvalImage(image_id="p1", width=640, height=480, truth=[Annotation(label="dent", box=box)],
    ...                   predictions=[Detection(label="dent", box=box, confidence=0.9)])
    >>> round(evaluate([image], ["dent"], {"dent": 0.5}).flat_metrics()["map50"], 6)
    1.0
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from autoinspect.evaluation.average_precision import detection_metrics, pr_curve
from autoinspect.evaluation.error_cases import rank_error_cases
from autoinspect.evaluation.inputs import EvalImage, check_inputs
from autoinspect.evaluation.matching import match_images, pool
from autoinspect.evaluation.outcomes import ImageOutcomes
from autoinspect.evaluation.result import EvaluationResult
from autoinspect.evaluation.slices import slice_metrics
from autoinspect.progress import figure

logger = logging.getLogger(__name__)


def evaluate(
    images: Sequence[EvalImage],
    classes: Sequence[str],
    thresholds: Mapping[str, float],
    *,
    error_count: int = 20,
    presence_thresholds: Mapping[str, float] | None = None,
) -> EvaluationResult:
    """Every metric of a model on these photos; ``error_count`` caps the error gallery. With
    ``presence_thresholds`` the verdicts of photos that carry presence come from it, as the Detector serves them;
    AP and the box operating point always come from the boxes.

    Raises ``ValueError`` for labels outside ``classes``, a class without a threshold, or duplicate image ids.
    """
    check_inputs(images, classes, thresholds)
    table = match_images(images, classes)
    pooled = {label: pool([row[label] for row in table]) for label in classes}
    outcomes = ImageOutcomes.build(images, table, classes, thresholds, presence_thresholds)
    operating_point, image_level = outcomes.summarise(range(len(images)))
    curves = {label: pr_curve(matches) for label, matches in pooled.items()}
    result = EvaluationResult(
        classes=list(classes),
        thresholds={label: thresholds[label] for label in classes},
        presence_thresholds=dict(presence_thresholds) if presence_thresholds is not None else None,
        images=len(images),
        detection=detection_metrics(pooled),
        operating_point=operating_point,
        image_level=image_level,
        slices=slice_metrics(images, outcomes),
        pr_curves={label: curve for label, curve in curves.items() if curve is not None},
        error_cases=rank_error_cases(images, table, thresholds, error_count, presence_thresholds),
    )
    logger.info(
        "evaluated %d photos: mAP50 %s, damaged caught %s, clean None rate %s",
        len(images),
        figure(result.detection.map50),
        figure(image_level.damaged_caught),
        figure(image_level.clean_none_rate),
    )
    return result
