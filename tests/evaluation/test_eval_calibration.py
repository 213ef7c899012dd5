"""Threshold calibration: the F1 optimum on a constructed case, its tie rule, and the damaged-caught mode."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
from eval_factories import CLASSES, det, gt, photo, random_images

from autoinspect.evaluation import CalibrationObjective, EvalImage, calibrate_thresholds, evaluate
from autoinspect.evaluation.calibration import lower_until_caught

HIT_OR_MISS = [(0.9, True), (0.8, False), (0.7, True), (0.6, True), (0.5, False), (0.4, False), (0.3, True)]
"""Scores best first and whether each lands on a truth box. With 5 truth boxes (one never found) F1 = 2TP/(kept+5)
is 1/3, 2/7, 1/2, 2/3, 3/5, 6/11, 2/3 at thresholds 0.9 ... 0.3: 0.6 and 0.3 tie at 2/3."""


@pytest.fixture
def constructed() -> list[EvalImage]:
    images = []
    for i, (score, hit) in enumerate(HIT_OR_MISS):
        box = (0.1, 0.1, 0.3, 0.3)
        truth = [gt("dent", *box)] if hit else []
        images.append(
            photo(f"p{i}", truth, [det("dent", score, *box) if hit else det("dent", score, 0.6, 0.6, 0.9, 0.9)])
        )
    images.append(photo("never-found", [gt("dent", 0.1, 0.1, 0.2, 0.2)], []))
    return images


def test_f1_picks_the_optimum_and_the_higher_threshold_on_ties(constructed: list[EvalImage]) -> None:
    assert calibrate_thresholds(constructed, ["dent"]) == {"dent": 0.6}
    assert evaluate(constructed, ["dent"], {"dent": 0.6}).operating_point["dent"].f1 == pytest.approx(2 / 3)


def test_min_threshold_bounds_the_candidates(constructed: list[EvalImage]) -> None:
    assert calibrate_thresholds(constructed, ["dent"], min_threshold=0.65) == {"dent": 0.7}


def test_class_without_detections_keeps_the_floor(constructed: list[EvalImage]) -> None:
    assert calibrate_thresholds(constructed, ["dent", "scratch"])["scratch"] == 0.05


def test_f1_threshold_is_optimal_among_all_scores_on_random_data() -> None:
    images = random_images(4)
    chosen = calibrate_thresholds(images, CLASSES)
    for label in CLASSES:
        scores = sorted({p.confidence for image in images for p in image.predictions if p.label == label})
        f1 = {s: evaluate(images, CLASSES, dict.fromkeys(CLASSES, s)).operating_point[label].f1 or 0.0 for s in scores}
        best = max(f1.values())
        assert f1[chosen[label]] == pytest.approx(best)
        assert chosen[label] == max(s for s, value in f1.items() if value == pytest.approx(best))


SCORES = np.array(
    [
        [0.9, -math.inf],  # damaged, caught at the start
        [0.2, 0.4],  # damaged: dent at 0.4 catches it for free
        [0.25, -math.inf],  # damaged: only scratch at 0.25 catches it, costing clean photo 3
        [0.3, -math.inf],  # clean
        [-math.inf, 0.35],  # clean: stays clean as long as dent stays above 0.35
    ]
)
DAMAGED = np.array([True, True, True, False, False])


def test_lowering_takes_the_cheapest_step_first() -> None:
    start = np.array([0.8, 0.8])

    assert lower_until_caught(SCORES, DAMAGED, start, 2 / 3, 0.05).tolist() == [0.8, 0.4]
    assert lower_until_caught(SCORES, DAMAGED, start, 1.0, 0.05).tolist() == [0.25, 0.4]
    assert start.tolist() == [0.8, 0.8]


def test_unreachable_target_stops_at_the_floor_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        lowered = lower_until_caught(SCORES, DAMAGED, np.array([0.8, 0.8]), 1.0, 0.3)

    assert lowered.tolist() == [0.8, 0.4]
    assert "stays below the target" in caplog.text


def _hard_inspections(seed: int) -> list[EvalImage]:
    """Damaged photos whose one true detection scores anywhere in (0.1, 1), and clean photos with a false alarm
    scoring up to 0.7: box F1 leaves the faint damage out, which the damaged-caught objective must bring back."""
    rng = np.random.default_rng(seed)
    box = (0.2, 0.2, 0.4, 0.4)
    damaged = [
        photo(f"d{i}", [gt(label, *box)], [det(label, round(float(rng.uniform(0.1, 1.0)), 2), *box)])
        for i, label in enumerate(CLASSES * 15)
    ]
    clean = [
        photo(f"c{i}", [], [det(label, round(float(rng.uniform(0.1, 0.7)), 2), *box)])
        for i, label in enumerate(CLASSES * 10)
    ]
    return damaged + clean


def test_damaged_caught_mode_meets_the_target_end_to_end() -> None:
    images = _hard_inspections(1)
    f1 = calibrate_thresholds(images, CLASSES)
    before = evaluate(images, CLASSES, f1).image_level
    assert before.damaged_caught is not None and before.damaged_caught < 1.0

    lowered = calibrate_thresholds(images, CLASSES, objective="damaged_caught", target_damaged_caught=1.0)
    after = evaluate(images, CLASSES, lowered).image_level
    floor = evaluate(images, CLASSES, dict.fromkeys(CLASSES, 0.05)).image_level

    assert after.damaged_caught == 1.0
    assert all(lowered[c] <= f1[c] for c in CLASSES)
    assert floor.clean_none_rate is not None and after.clean_none_rate is not None
    assert after.clean_none_rate > floor.clean_none_rate
    assert calibrate_thresholds(
        images, CLASSES, objective=CalibrationObjective.DAMAGED_CAUGHT, target_damaged_caught=before.damaged_caught
    ) == pytest.approx(f1)


def test_damaged_caught_mode_needs_a_target(constructed: list[EvalImage]) -> None:
    with pytest.raises(ValueError, match="target_damaged_caught"):
        calibrate_thresholds(constructed, ["dent"], objective="damaged_caught")
