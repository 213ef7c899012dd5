"""Builders shared by the evaluation tests: photos, truth boxes and detections in a few characters each."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autoinspect.domain import Annotation, Box, Detection
from autoinspect.evaluation import EvalImage

CLASSES = ["scratch", "dent"]


def gt(label: str, x1: float, y1: float, x2: float, y2: float) -> Annotation:
    """A truth box in normalised coordinates."""
    return Annotation(label=label, box=Box(x1=x1, y1=y1, x2=x2, y2=y2))


def det(label: str, confidence: float, x1: float, y1: float, x2: float, y2: float) -> Detection:
    return Detection(label=label, box=Box(x1=x1, y1=y1, x2=x2, y2=y2), confidence=confidence)


def photo(
    image_id: str,
    truth: Sequence[Annotation] = (),
    predictions: Sequence[Detection] = (),
    *,
    width: int = 100,
    height: int = 100,
    **attributes: str,
) -> EvalImage:
    return EvalImage(
        image_id=image_id,
        width=width,
        height=height,
        truth=list(truth),
        predictions=list(predictions),
        attributes=attributes,
    )


def _random_box(rng: np.random.Generator) -> tuple[float, float, float, float]:
    x1, y1 = rng.uniform(0.0, 0.8, 2)
    w, h = rng.uniform(0.01, 0.2, 2)
    return float(x1), float(y1), float(x1 + w), float(y1 + h)


def _jitter(rng: np.random.Generator, box: Box) -> tuple[float, float, float, float]:
    dx1, dy1, dx2, dy2 = rng.normal(0.0, 0.1, 4) * np.array([box.width, box.height, box.width, box.height])
    x1, y1, x2, y2 = box.x1 + dx1, box.y1 + dy1, box.x2 + dx2, box.y2 + dy2
    return float(min(x1, x2)), float(min(y1, y2)), float(max(x1, x2)), float(max(y1, y2))


def random_images(seed: int, n: int = 50, classes: Sequence[str] = tuple(CLASSES)) -> list[EvalImage]:
    """Photos with 0-4 truth boxes, jittered hits, duplicates and random false alarms.

    Scores come from a coarse grid so that many tie, within and across photos, which is where matching and AP
    implementations usually differ.
    """
    rng = np.random.default_rng(seed)
    images = []
    for index in range(n):
        truth = [gt(str(rng.choice(classes)), *_random_box(rng)) for _ in range(rng.integers(0, 5))]
        predictions = []
        for box in truth:
            for _ in range(rng.choice([0, 1, 1, 1, 2])):  # a miss, a hit, or a duplicate
                predictions.append(det(box.label, float(rng.integers(3, 11) / 10), *_jitter(rng, box.box)))
        for _ in range(rng.integers(0, 4)):
            predictions.append(det(str(rng.choice(classes)), float(rng.integers(1, 9) / 10), *_random_box(rng)))
        rng.shuffle(predictions)  # type: ignore[arg-type]
        width, height = (int(side) for side in rng.integers(200, 1300, 2))
        images.append(photo(f"img{index:03d}", truth, predictions, width=width, height=height))
    return images
