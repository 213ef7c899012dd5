"""Ratios that are ``None`` when undefined, never a made-up 0 or 1.

A model that predicts nothing has no precision, and a slice without clean cars has no clean-None rate; reporting
0 would fail a promotion gate for the wrong reason and reporting 1 would pass one. ``flat_metrics`` leaves such
keys out, so a gate sees "missing", not a number.
"""

from __future__ import annotations


def rate(hits: int, total: int) -> float | None:
    """``hits / total``, or ``None`` when ``total`` is 0."""
    return hits / total if total else None


def f1_score(true_positives: int, false_positives: int, false_negatives: int) -> float | None:
    """Harmonic mean of precision and recall, written as ``2TP / (2TP + FP + FN)`` so it is defined (0) when
    only one of them is: a class with truth and no detections scores 0, not ``None``."""
    return rate(2 * true_positives, 2 * true_positives + false_positives + false_negatives)
