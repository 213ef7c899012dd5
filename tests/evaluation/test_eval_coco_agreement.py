"""AP must agree with pycocotools COCOeval (bbox) on the same data, class by class, to 1e-6."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest
from eval_factories import CLASSES, det, gt, photo, random_images
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from autoinspect.domain import Box
from autoinspect.evaluation import EvalImage, evaluate

TOLERANCE = 1e-6


@dataclass(frozen=True)
class CocoFigures:
    per_class: dict[str, tuple[float | None, float | None, float | None]]
    """class -> (AP50, AP75, AP50-95), ``None`` where COCO reports -1."""
    overall: tuple[float, float, float]


def _pixel_xywh(image: EvalImage, box: Box) -> list[float]:
    x1, y1, x2, y2 = box.to_pixels(image.width, image.height)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_figures(images: Sequence[EvalImage], classes: Sequence[str]) -> CocoFigures:
    """Run pycocotools on the photos; ids start at 1 because COCOeval treats a match to gt id 0 as no match."""
    category = {label: k + 1 for k, label in enumerate(classes)}
    truth, results = [], []
    for image_id, image in enumerate(images, start=1):
        for box in image.truth:
            xywh = _pixel_xywh(image, box.box)
            truth.append(
                {
                    "id": len(truth) + 1,
                    "image_id": image_id,
                    "category_id": category[box.label],
                    "bbox": xywh,
                    "area": xywh[2] * xywh[3],
                    "iscrowd": 0,
                }
            )
        for found in image.predictions:
            results.append(
                {
                    "image_id": image_id,
                    "category_id": category[found.label],
                    "bbox": _pixel_xywh(image, found.box),
                    "score": found.confidence,
                }
            )
    with contextlib.redirect_stdout(io.StringIO()):
        coco_truth = COCO()
        coco_truth.dataset = {
            "images": [{"id": i, "width": im.width, "height": im.height} for i, im in enumerate(images, start=1)],
            "categories": [{"id": k, "name": label} for label, k in category.items()],
            "annotations": truth,
        }
        coco_truth.createIndex()
        evaluation = COCOeval(coco_truth, coco_truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [IoU, recall, class] at area "all", 100 dets
    per_class = {}
    for k, label in enumerate(classes):
        table = precision[:, :, k]
        has_truth = bool((table > -1).all())
        per_class[label] = (
            (float(table[0].mean()), float(table[5].mean()), float(table.mean())) if has_truth else (None, None, None)
        )
    stats = evaluation.stats
    return CocoFigures(per_class, (float(stats[1]), float(stats[2]), float(stats[0])))


def edge_cases() -> list[EvalImage]:
    """Hand-made traps: predictions on a clean car, three duplicates on one box, ties across photos with
    different outcomes, a box overlapping two truths (unequally, then equally), a photo with over 100 detections."""
    crowded = [
        det("scratch", round(0.01 * (i % 90) + 0.05, 2), 0.005 * i, 0.1, 0.005 * i + 0.02, 0.2) for i in range(130)
    ]
    return [
        photo("clean", [], [det("scratch", 0.9, 0.1, 0.1, 0.3, 0.3), det("dent", 0.5, 0.5, 0.5, 0.7, 0.7)]),
        photo(
            "duplicates",
            [gt("scratch", 0.1, 0.1, 0.3, 0.2)],
            [det("scratch", 0.8, 0.1, 0.1, 0.3, 0.2)] * 2 + [det("scratch", 0.8, 0.11, 0.1, 0.3, 0.21)],
            width=640,
            height=480,
        ),
        photo("tie-hit", [gt("scratch", 0.5, 0.5, 0.6, 0.6)], [det("scratch", 0.7, 0.5, 0.5, 0.6, 0.6)]),
        photo("tie-miss", [gt("scratch", 0.5, 0.5, 0.6, 0.6)], [det("scratch", 0.7, 0.0, 0.0, 0.1, 0.1)]),
        photo(
            "two-truths",
            [gt("dent", 0.2, 0.2, 0.5, 0.5), gt("dent", 0.25, 0.2, 0.55, 0.5)],
            [det("dent", 0.6, 0.22, 0.2, 0.52, 0.5), det("dent", 0.6, 0.2, 0.2, 0.5, 0.5)],
            width=800,
            height=300,
        ),
        photo(
            "equal-overlap",
            [gt("dent", 0.2, 0.2, 0.6, 0.3), gt("dent", 0.3, 0.2, 0.7, 0.3)],
            [det("dent", 0.9, 0.25, 0.2, 0.65, 0.3), det("dent", 0.8, 0.2, 0.2, 0.6, 0.3)],
        ),
        photo("crowded", [gt("scratch", 0.0, 0.1, 0.02, 0.2), gt("scratch", 0.6, 0.1, 0.62, 0.2)], crowded),
        photo("missed", [gt("dent", 0.1, 0.6, 0.3, 0.9)], []),
    ]


def _without(images: Sequence[EvalImage], label: str) -> list[EvalImage]:
    return [
        image.model_copy(update={"predictions": [p for p in image.predictions if p.label != label]}) for image in images
    ]


def _with_rust_false_alarm(images: list[EvalImage]) -> list[EvalImage]:
    first = images[0]
    rust = det("rust", 0.4, 0.1, 0.1, 0.2, 0.2)
    return [first.model_copy(update={"predictions": [*first.predictions, rust]}), *images[1:]]


Scenario = tuple[list[EvalImage], list[str]]
SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "random-seed-0": lambda: (random_images(0), CLASSES),
    "random-seed-1": lambda: (random_images(1), CLASSES),
    "edge-cases": lambda: (edge_cases(), CLASSES),
    "class-without-predictions": lambda: (_without(random_images(2), "dent"), CLASSES),
    "class-without-truth": lambda: (
        _with_rust_false_alarm([*random_images(3, 20), *edge_cases()]),
        [*CLASSES, "rust"],
    ),
}


@pytest.mark.parametrize("name", SCENARIOS)
def test_ap_agrees_with_pycocotools(name: str) -> None:
    images, classes = SCENARIOS[name]()
    expected = coco_figures(images, classes)
    result = evaluate(images, classes, dict.fromkeys(classes, 0.5))

    for label in classes:
        ap = result.detection.per_class[label]
        assert (ap.ap50, ap.ap75, ap.ap50_95) == pytest.approx(expected.per_class[label], abs=TOLERANCE), label
    ours = (result.detection.map50, result.detection.map75, result.detection.map50_95)
    assert ours == pytest.approx(expected.overall, abs=TOLERANCE)


def test_scenarios_exercise_what_they_claim() -> None:
    """Guard against a generator change that would quietly make the agreement test trivial."""
    images = random_images(0)
    assert all(0.1 < value < 0.9 for value in coco_figures(images, CLASSES).overall)
    assert sum(not image.truth for image in images) >= 3
    scores = [p.confidence for image in images for p in image.predictions]
    assert len(set(scores)) < len(scores) / 5
    assert max(len(image.predictions) for image in edge_cases()) > 100
    images, classes = SCENARIOS["class-without-truth"]()
    assert coco_figures(images, classes).per_class["rust"] == (None, None, None)
    assert evaluate(images, classes, dict.fromkeys(classes, 0.5)).detection.per_class["rust"].ap50 is None
