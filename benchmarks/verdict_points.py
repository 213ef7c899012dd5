"""A trained model's verdict at two operating points chosen on val: per-class presence F1, and the common shift
that balances damaged caught against clean "None" (``balance_verdict``), both measured on test.

Run: .venv/bin/python benchmarks/verdict_points.py RUN_DIR/model.onnx [--data ../shared/data/car-damage-full]

The model file's own thresholds are ignored: both points are recalibrated here from val, as
``autoinspect train`` does. "None" photos are split into other sources (``clean-*``) and the damaged photos'
own sources, as in ``quality_row.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.evaluation import EvalImage
from autoinspect.evaluation.calibration import balance_verdict, calibrate_presence
from autoinspect.evaluation.image_level import image_level_metrics, predicted_verdict, truth_verdict
from autoinspect.inference import Detector
from autoinspect.pipelines.labelled_photos import load_split
from quality_row import OTHER_SOURCE_PREFIX

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage-full"


def predicted(detector: Detector, layout: DatasetLayout, split: Split) -> list[EvalImage]:
    photos = load_split(layout, split)
    answers = detector.predict_batch([photo.rgb for photo in photos])
    return [photo.with_predictions(a.candidates, a.presence) for photo, a in zip(photos, answers, strict=True)]


def describe(images: Sequence[EvalImage], classes: list[str], thresholds: Mapping[str, float]) -> str:
    truths = [truth_verdict(image) for image in images]
    verdicts = [predicted_verdict(image, {}, thresholds) for image in images]
    metrics = image_level_metrics(truths, verdicts, classes)
    f1 = ", ".join(f"F1 {label} {m.f1 or 0:.2f}" for label, m in metrics.per_class.items())
    none = {"other": [0, 0], "same": [0, 0]}
    for image, truth, verdict in zip(images, truths, verdicts, strict=True):
        if truth.is_none:
            origin = "other" if image.image_id.split("/")[-1].startswith(OTHER_SOURCE_PREFIX) else "same"
            none[origin][0] += verdict.is_none
            none[origin][1] += 1
    return (
        f"{f1}; caught {metrics.damaged_caught or 0:.2f}; None other {none['other'][0]}/{none['other'][1]}, "
        f"same {none['same'][0]}/{none['same'][1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    detector = Detector(args.model)
    classes = detector.metadata.classes
    layout = DatasetLayout(args.data)
    val, test = predicted(detector, layout, Split.VAL), predicted(detector, layout, Split.TEST)
    f1_point = calibrate_presence(val, classes)
    if f1_point is None:
        raise SystemExit(f"{args.model} has no presence output")
    points = {"presence F1": f1_point, "verdict balance": balance_verdict(val, classes, f1_point)}
    for name, thresholds in points.items():
        shown = ", ".join(f"{label} {value:.3f}" for label, value in thresholds.items())
        print(f"{name} ({shown})")
        print(f"  val:  {describe(val, classes, thresholds)}")
        print(f"  test: {describe(test, classes, thresholds)}")


if __name__ == "__main__":
    main()
