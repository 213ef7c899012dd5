"""Presence models in evaluation: the verdict from presence (as the Detector serves it), presence F1, calibration."""

from __future__ import annotations

import pytest
from eval_factories import CLASSES, det, gt

from autoinspect.evaluation import EvalImage, evaluate
from autoinspect.evaluation.calibration import balance_verdict, calibrate_presence

SCRATCH = gt("scratch", 0.1, 0.1, 0.3, 0.2)
DENT = gt("dent", 0.5, 0.5, 0.7, 0.7)


def image(image_id: str, truth: list, presence: dict[str, float] | None, boxes: list | None = None) -> EvalImage:
    return EvalImage(image_id=image_id, width=100, height=100, truth=truth, predictions=boxes or [], presence=presence)


def photos() -> list[EvalImage]:
    """A false scratch box on a clean car that presence rejects, and a dent that presence names without a box."""
    return [
        image("scratched", [SCRATCH], {"scratch": 0.9, "dent": 0.1}, [det("scratch", 0.8, 0.1, 0.1, 0.3, 0.2)]),
        image("dented", [DENT], {"scratch": 0.2, "dent": 0.7}),
        image("clean", [], {"scratch": 0.3, "dent": 0.1}, [det("scratch", 0.9, 0.4, 0.4, 0.6, 0.6)]),
        image("both", [SCRATCH, DENT], {"scratch": 0.6, "dent": 0.4}),
    ]


def test_verdicts_come_from_presence_when_thresholds_are_given() -> None:
    thresholds = {"scratch": 0.5, "dent": 0.5}
    by_boxes = evaluate(photos(), CLASSES, thresholds).image_level
    by_presence = evaluate(photos(), CLASSES, thresholds, presence_thresholds=thresholds).image_level
    assert (by_boxes.damaged_caught, by_boxes.clean_none_rate) == (pytest.approx(1 / 3), 0.0)
    assert (by_presence.damaged_caught, by_presence.clean_none_rate) == (1.0, 1.0)
    dent = by_presence.per_class["dent"]
    assert (dent.images_with_class, dent.images_flagged, dent.images_both) == (2, 1, 1)
    assert dent.f1 == pytest.approx(2 / 3)
    flat = evaluate(photos(), CLASSES, thresholds, presence_thresholds=thresholds).flat_metrics()
    assert flat["image/f1/scratch"] == 1.0 and flat["image/f1/dent"] == pytest.approx(2 / 3)


def test_presence_calibration_picks_the_best_f1_per_class() -> None:
    chosen = calibrate_presence(photos(), CLASSES)
    assert chosen == {"scratch": 0.6, "dent": 0.4}  # every photo right at these, the highest such thresholds
    result = evaluate(photos(), CLASSES, {"scratch": 0.5, "dent": 0.5}, presence_thresholds=chosen)
    assert result.image_level.verdict_exact_accuracy == 1.0


def test_no_presence_calibration_for_a_model_without_presence() -> None:
    assert calibrate_presence([image("a", [SCRATCH], None)], CLASSES) is None


def test_the_verdict_balance_raises_loose_thresholds_until_clean_cars_are_left_alone() -> None:
    damaged = [image(f"d{i}", [SCRATCH], {"scratch": 0.5 + 0.04 * i, "dent": 0.1}) for i in range(8)]
    clean = [image(f"c{i}", [], {"scratch": 0.2 + 0.05 * i, "dent": 0.1}) for i in range(4)]  # up to 0.35
    loose = {"scratch": 0.25, "dent": 0.9}  # flags 3 of the 4 clean photos
    balanced = balance_verdict([*damaged, *clean], CLASSES, loose)
    assert 0.35 < balanced["scratch"] <= 0.5  # between the cleanest false alarm and the weakest damage
    assert balanced["dent"] > loose["dent"]  # one common shift: the classes keep their order
    flagged = [(p.presence or {})["scratch"] >= balanced["scratch"] for p in [*damaged, *clean]]
    assert flagged == [True] * 8 + [False] * 4
    assert balance_verdict(damaged, CLASSES, loose) == loose  # no clean photo: nothing to balance
