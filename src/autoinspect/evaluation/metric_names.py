"""Named metric keys: the one spelling of every figure that trackers log and promotion gates compare.

Gates elsewhere build keys with these functions instead of writing ``"ap50/scratch"`` by hand, so a renamed
metric breaks at import time, not silently at promotion time.

Example:
    >>> metric_key(MetricName.MAP50), metric_key(MetricName.AP50, "scratch")
    ('map50', 'ap50/scratch')
    >>> slice_metric_key("tags", "minor-dent|minor-scratch", metric_key(MetricName.DAMAGED_CAUGHT))
    'slice/tags/minor-dent_minor-scratch/image/damaged_caught'
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class MetricName(StrEnum):
    """Every metric of :meth:`EvaluationResult.flat_metrics`; all are "higher is better", in [0, 1]."""

    MAP50 = "map50"
    MAP75 = "map75"
    MAP50_95 = "map50_95"
    AP50 = "ap50"
    AP75 = "ap75"
    AP50_95 = "ap50_95"
    PRECISION = "precision"
    """Box precision at the operating threshold, IoU 0.5."""
    RECALL = "recall"
    F1 = "f1"
    DAMAGED_CAUGHT = "image/damaged_caught"
    CLEAN_NONE_RATE = "image/clean_none_rate"
    VERDICT_EXACT_ACCURACY = "image/verdict_exact_accuracy"
    IMAGE_PRECISION = "image/precision"
    """Share of photos flagged with a class that show it."""
    IMAGE_RECALL = "image/recall"
    IMAGE_F1 = "image/f1"
    """Presence F1: photos that show a class against photos whose verdict names it."""


PER_CLASS: Final = frozenset(
    {
        MetricName.AP50,
        MetricName.AP75,
        MetricName.AP50_95,
        MetricName.PRECISION,
        MetricName.RECALL,
        MetricName.F1,
        MetricName.IMAGE_PRECISION,
        MetricName.IMAGE_RECALL,
        MetricName.IMAGE_F1,
    }
)
"""The metrics that exist once per class and need a label in their key."""

_UNSAFE = re.compile(r"[^\w.\- ]")
"""What MLflow refuses in a key part (and ``/``, which would nest it): replaced by ``_``."""


def _safe(part: str) -> str:
    return _UNSAFE.sub("_", part)


def metric_key(name: MetricName, label: str | None = None) -> str:
    """The flat key of a metric: the name alone, or ``name/label`` for a per-class one."""
    if (label is None) == (name in PER_CLASS):
        raise ValueError(f"{name.value} {'needs' if label is None else 'takes no'} class label")
    return name.value if label is None else f"{name.value}/{_safe(label)}"


def slice_metric_key(key: str, value: str, metric: str) -> str:
    """The flat key of a metric (from :func:`metric_key`) measured on one slice."""
    return f"slice/{_safe(key)}/{_safe(value)}/{metric}"
