"""``evaluate`` as a whole: the perfect and the empty predictor, the flat keys, JSON, and refused inputs."""

from __future__ import annotations

import pytest
from eval_factories import CLASSES, det, photo, random_images

from autoinspect.evaluation import EvalImage, EvaluationResult, MetricName, evaluate, metric_key

THRESHOLDS = {"scratch": 0.5, "dent": 0.5}


def _perfect(images: list[EvalImage]) -> list[EvalImage]:
    return [
        image.model_copy(
            update={"predictions": [det(t.label, 0.9, t.box.x1, t.box.y1, t.box.x2, t.box.y2) for t in image.truth]}
        )
        for image in images
    ]


def _empty(images: list[EvalImage]) -> list[EvalImage]:
    return [image.model_copy(update={"predictions": []}) for image in images]


def test_a_perfect_predictor_scores_one_everywhere() -> None:
    result = evaluate(_perfect(random_images(6)), CLASSES, THRESHOLDS)
    flat = result.flat_metrics()

    assert result.image_level.clean_images > 0
    assert all(value == pytest.approx(1.0) for value in flat.values()), flat
    assert result.error_cases == []


def test_an_empty_predictor_scores_zero_but_leaves_clean_cars_alone() -> None:
    images = _empty(random_images(6))
    result = evaluate(images, CLASSES, THRESHOLDS)
    flat = result.flat_metrics()

    for name in (MetricName.MAP50, MetricName.MAP75, MetricName.MAP50_95, MetricName.DAMAGED_CAUGHT):
        assert flat[metric_key(name)] == 0.0
    for label in CLASSES:
        for name in (MetricName.AP50, MetricName.AP50_95, MetricName.RECALL, MetricName.F1, MetricName.IMAGE_RECALL):
            assert flat[metric_key(name, label)] == 0.0
        assert result.operating_point[label].precision is None
        assert metric_key(MetricName.PRECISION, label) not in flat
    assert flat[metric_key(MetricName.CLEAN_NONE_RATE)] == 1.0
    clean_share = result.image_level.clean_images / len(images)
    assert flat[metric_key(MetricName.VERDICT_EXACT_ACCURACY)] == pytest.approx(clean_share)
    assert result.error_cases
    assert all(case.false_positives == 0 for case in result.error_cases)
    assert all(kind.startswith("missed ") for case in result.error_cases for kind in case.kinds)


def test_flat_keys_are_the_named_ones() -> None:
    images = [
        image.model_copy(update={"attributes": {"source": "lensor" if i % 2 else "seva", "tags": "minor-dent|scratch"}})
        for i, image in enumerate(random_images(7, 10))
    ]
    flat = evaluate(images, CLASSES, THRESHOLDS).flat_metrics()

    headline = {"map50", "map75", "map50_95", "image/damaged_caught", "image/clean_none_rate"}
    per_class = {f"{name}/{label}" for name in ("ap50", "ap50_95", "recall", "f1", "image/recall") for label in CLASSES}
    assert headline | per_class <= set(flat)
    assert "slice/source/lensor/image/damaged_caught" in flat
    assert "slice/tags/minor-dent_scratch/recall/dent" in flat
    assert all(isinstance(value, float) for value in flat.values())


def test_result_survives_json() -> None:
    result = evaluate(random_images(8, 15), CLASSES, THRESHOLDS, error_count=3)

    assert EvaluationResult.model_validate_json(result.model_dump_json()) == result
    assert len(result.error_cases) == 3


@pytest.mark.parametrize(
    ("images", "thresholds", "message"),
    [
        ([photo("a", [], [det("rust", 0.9, 0, 0, 1, 1)])], THRESHOLDS, "not among the classes"),
        ([photo("a"), photo("a")], THRESHOLDS, "duplicate image ids"),
        ([photo("a")], {"scratch": 0.5}, "no score threshold"),
    ],
)
def test_bad_input_is_refused_with_the_reason(
    images: list[EvalImage], thresholds: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(images, CLASSES, thresholds)
