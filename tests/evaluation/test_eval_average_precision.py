"""AP and PR curves on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest
from eval_factories import det, gt, photo

from autoinspect.evaluation import evaluate
from autoinspect.evaluation.average_precision import RECALL_POINTS, interpolated_precision
from autoinspect.evaluation.matching import IOU_THRESHOLDS, PooledMatches, greedy_match


def _pooled(hits: list[bool], scores: list[float], n_truth: int) -> PooledMatches:
    row = np.array(hits, dtype=bool)
    return PooledMatches(np.array(scores), np.tile(row, (len(IOU_THRESHOLDS), 1)), n_truth)


def test_interpolated_precision_by_hand() -> None:
    """Hits at ranks 1 and 3 of 2 truths: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1. The envelope keeps 1 up to
    recall 0.5 (51 recall points) and 2/3 above it (50 points)."""
    table = interpolated_precision(_pooled([True, False, True], [0.9, 0.8, 0.7], n_truth=2))

    assert table is not None
    assert table.shape == (len(IOU_THRESHOLDS), len(RECALL_POINTS))
    assert table[0].mean() == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_unreached_recall_points_count_as_zero() -> None:
    table = interpolated_precision(_pooled([True], [0.9], n_truth=4))

    assert table is not None
    assert table[0].mean() == pytest.approx(26 / 101)


def test_greedy_match_prefers_higher_iou_and_later_truth_on_ties() -> None:
    ious = np.array([[0.7, 0.7, 0.9], [0.7, 0.7, 0.0], [0.8, 0.0, 0.0]])

    assert greedy_match(ious, np.array([0.5])).tolist() == [[2, 1, 0]]


def test_pr_curve_keeps_the_corners_and_collapses_ties() -> None:
    """Hits at 0.9, at 0.8 (tied with a false alarm) and at 0.5; false alarms at 0.7 (no corner) and 0.3 (the
    end of the list)."""
    image = photo(
        "a",
        [gt("dent", 0.1 * i, 0.0, 0.1 * i + 0.05, 0.1) for i in range(4)],
        [
            det("dent", 0.9, 0.0, 0.0, 0.05, 0.1),
            det("dent", 0.8, 0.5, 0.5, 0.6, 0.6),
            det("dent", 0.8, 0.1, 0.0, 0.15, 0.1),
            det("dent", 0.7, 0.5, 0.5, 0.6, 0.6),
            det("dent", 0.5, 0.2, 0.0, 0.25, 0.1),
            det("dent", 0.3, 0.5, 0.5, 0.6, 0.6),
        ],
    )
    curve = evaluate([image], ["dent"], {"dent": 0.5}).pr_curves["dent"]

    assert curve.scores == [0.9, 0.8, 0.5, 0.3]
    assert curve.recall == [0.25, 0.5, 0.75, 0.75]
    assert curve.precision == pytest.approx([1.0, 2 / 3, 3 / 5, 1 / 2])


def test_classes_without_truth_have_no_ap_and_no_curve() -> None:
    image = photo("a", [gt("dent", 0.1, 0.1, 0.2, 0.2)], [det("scratch", 0.9, 0.1, 0.1, 0.2, 0.2)])
    result = evaluate([image], ["scratch", "dent"], {"scratch": 0.5, "dent": 0.5})

    assert result.detection.per_class["scratch"].ap50 is None
    assert result.detection.per_class["scratch"].detections == 1
    assert result.detection.map50 == result.detection.per_class["dent"].ap50 == 0.0
    assert list(result.pr_curves) == ["dent"]
