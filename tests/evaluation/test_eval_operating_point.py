"""Operating point, image-level verdicts, slices and the error gallery on a case small enough to count by hand.

Photo A (damaged: a scratch and a dent): the scratch is hit once at 0.9 and again by a duplicate at 0.8 (a
false positive, matching is one-to-one), a 0.3 scratch sits below the threshold, and a 0.6 dent lands far from
the real dent. Photo B (clean) gets a 0.7 dent and a 0.2 scratch. Photo C (damaged: a scratch) gets nothing.
Both thresholds are 0.5.
"""

from __future__ import annotations

import pytest
from eval_factories import CLASSES, det, gt, photo

from autoinspect.domain import Verdict
from autoinspect.evaluation import EvalImage, error_cases, evaluate
from autoinspect.evaluation.image_level import predicted_verdict

THRESHOLDS = {"scratch": 0.5, "dent": 0.5}


@pytest.fixture
def images() -> list[EvalImage]:
    return [
        photo(
            "A",
            [gt("scratch", 0.1, 0.1, 0.3, 0.3), gt("dent", 0.5, 0.5, 0.8, 0.8)],
            [
                det("scratch", 0.9, 0.1, 0.1, 0.3, 0.3),
                det("scratch", 0.8, 0.1, 0.1, 0.3, 0.3),
                det("scratch", 0.3, 0.6, 0.0, 0.7, 0.1),
                det("dent", 0.6, 0.0, 0.6, 0.2, 0.9),
            ],
            source="lensor",
            brightness="dark",
        ),
        photo(
            "B",
            [],
            [det("dent", 0.7, 0.4, 0.4, 0.6, 0.6), det("scratch", 0.2, 0.1, 0.1, 0.2, 0.2)],
            source="clean",
            brightness="dark",
        ),
        photo("C", [gt("scratch", 0.4, 0.4, 0.45, 0.6)], [], source="lensor", brightness="normal"),
    ]


def test_operating_point_counts_by_hand(images: list[EvalImage]) -> None:
    point = evaluate(images, CLASSES, THRESHOLDS).operating_point

    scratch, dent = point["scratch"], point["dent"]
    assert (scratch.true_positives, scratch.false_positives, scratch.false_negatives) == (1, 1, 1)
    assert (scratch.precision, scratch.recall, scratch.f1) == (0.5, 0.5, 0.5)
    assert (dent.true_positives, dent.false_positives, dent.false_negatives) == (0, 2, 1)
    assert (dent.precision, dent.recall, dent.f1) == (0.0, 0.0, 0.0)


def test_threshold_is_inclusive_and_moves_the_counts(images: list[EvalImage]) -> None:
    point = evaluate(images, CLASSES, {"scratch": 0.3, "dent": 0.7}).operating_point

    assert (point["scratch"].true_positives, point["scratch"].false_positives) == (1, 2)
    assert (point["dent"].false_positives, point["dent"].threshold) == (1, 0.7)


def test_iou_below_half_is_a_miss_and_half_is_a_hit() -> None:
    truth = [gt("dent", 0.0, 0.0, 0.4, 0.1)]
    just_below = photo("a", truth, [det("dent", 0.9, 0.0, 0.0, 0.1999, 0.1)], width=1000, height=50)
    exactly_half = photo("b", truth, [det("dent", 0.9, 0.0, 0.0, 0.2, 0.1)], width=1000, height=50)
    point = evaluate([just_below, exactly_half], CLASSES, THRESHOLDS).operating_point["dent"]

    assert (point.true_positives, point.false_positives) == (1, 1)


def test_image_level_by_hand(images: list[EvalImage]) -> None:
    level = evaluate(images, CLASSES, THRESHOLDS).image_level

    assert (level.images, level.damaged_images, level.clean_images) == (3, 2, 1)
    assert (level.damaged_caught, level.clean_none_rate) == (0.5, 0.0)
    assert level.verdict_exact_accuracy == pytest.approx(1 / 3)
    scratch, dent = level.per_class["scratch"], level.per_class["dent"]
    assert (scratch.images_with_class, scratch.images_flagged, scratch.precision, scratch.recall) == (2, 1, 1.0, 0.5)
    assert (dent.images_with_class, dent.images_flagged, dent.precision, dent.recall) == (1, 2, 0.5, 1.0)


def test_verdict_is_none_below_every_threshold(images: list[EvalImage]) -> None:
    assert predicted_verdict(images[1], {"scratch": 0.5, "dent": 0.8}).value == "None"
    assert predicted_verdict(images[0], THRESHOLDS) == Verdict.from_labels(["dent", "scratch"])


def test_slices_by_hand(images: list[EvalImage]) -> None:
    slices = {(s.key, s.value): s for s in evaluate(images, CLASSES, THRESHOLDS).slices}

    assert list(slices) == [
        ("brightness", "dark"),
        ("brightness", "normal"),
        ("source", "clean"),
        ("source", "lensor"),
    ]
    dark = slices["brightness", "dark"]
    assert (dark.images, dark.image_level.damaged_images, dark.image_level.clean_images) == (2, 1, 1)
    assert (dark.image_level.damaged_caught, dark.image_level.clean_none_rate) == (1.0, 0.0)
    assert dark.operating_point["scratch"].recall == 1.0
    assert dark.operating_point["dent"].false_positives == 2
    lensor = slices["source", "lensor"]
    assert lensor.image_level.clean_none_rate is None
    assert (lensor.operating_point["scratch"].true_positives, lensor.operating_point["scratch"].false_negatives) == (
        1,
        1,
    )
    clean = slices["source", "clean"]
    assert clean.operating_point["scratch"].precision is None
    assert clean.operating_point["dent"].recall is None


def test_a_slice_holding_every_photo_equals_the_total(images: list[EvalImage]) -> None:
    tagged = [image.model_copy(update={"attributes": {"all": "yes"}}) for image in images]
    result = evaluate(tagged, CLASSES, THRESHOLDS)

    (everything,) = result.slices
    assert everything.operating_point == result.operating_point
    assert everything.image_level == result.image_level


def test_error_cases_rank_and_label(images: list[EvalImage]) -> None:
    cases = error_cases(images, THRESHOLDS, k=3)

    assert [case.image_id for case in cases] == ["A", "B", "C"]
    worst = cases[0]
    assert (worst.false_negatives, worst.false_positives) == (1, 2)
    assert worst.kinds == ["false dent", "false scratch", "missed dent"]
    assert worst.margin == pytest.approx(0.1)
    assert cases[1].kinds == ["false dent on clean car"]
    assert cases[1].predicted.labels == ("dent",)
    assert (cases[2].kinds, cases[2].margin) == (["missed scratch"], None)
    assert [case.image_id for case in error_cases(images, THRESHOLDS, k=2)] == ["A", "B"]


def test_equally_bad_photos_come_borderline_first() -> None:
    far = photo("far", [], [det("dent", 0.95, 0.1, 0.1, 0.2, 0.2)])
    near = photo("near", [], [det("dent", 0.55, 0.1, 0.1, 0.2, 0.2)])
    perfect = photo("ok", [gt("dent", 0.1, 0.1, 0.2, 0.2)], [det("dent", 0.9, 0.1, 0.1, 0.2, 0.2)])

    assert [c.image_id for c in error_cases([far, perfect, near], THRESHOLDS, k=5)] == ["near", "far"]
