"""The photo classifier alone (no detector), and how much of its verdict is the photo's source.

Run: .venv/bin/python benchmarks/photo_classifier.py [--data ../shared/data/car-damage-full] [--imgsz 384]
     [--l2 0.03 0.1 0.3] [--variant efficientnet_lite2]

Per L2 penalty, the classifier of :mod:`autoinspect.training.lite.photo_classifier` (fitted as ``autoinspect
train`` fits it, on the train photos and their mirror images) answers alone, at per-class presence thresholds
with the best presence F1:
- on test, thresholds chosen on val: presence F1 per class, damaged photos caught, clean photos answered "None"
  split by origin (other sources: ``clean-*`` files; same sources: "None" photos of the damaged photos' sources);
- out of fold on train (5 folds, each photo answered by a classifier that never saw it; thresholds chosen on the
  out-of-fold answers): the same figures, where the same-source clean photos are 18 instead of test's 2. A gap
  between the two "None" rates is what the classifier learnt of the sources rather than of damage.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.evaluation import EvalImage
from autoinspect.evaluation.calibration import calibrate_presence
from autoinspect.evaluation.image_level import image_level_metrics, predicted_verdict, truth_verdict
from autoinspect.pipelines.labelled_photos import LabelledPhoto, load_split
from autoinspect.training.base import TrainConfig
from autoinspect.training.lite.dataset import LayoutSplit
from autoinspect.training.lite.photo_classifier import PhotoClassifier

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage-full"
OTHER_SOURCE_PREFIX = "clean"
FOLDS = 5


def answered(photos: Sequence[LabelledPhoto], probabilities: np.ndarray, classes: Sequence[str]) -> list[EvalImage]:
    """The photos with the classifier's presence probabilities (``[N, C]``) as their answers."""
    return [
        photo.with_predictions([], dict(zip(classes, map(float, row), strict=True)))
        for photo, row in zip(photos, probabilities, strict=True)
    ]


def figures(photos: Sequence[LabelledPhoto], probabilities: np.ndarray, thresholds: dict[str, float]) -> str:
    """Presence F1 per class, caught, and "None" by origin, as a table's cells."""
    classes = list(thresholds)
    images = answered(photos, probabilities, classes)
    truths = [truth_verdict(image) for image in images]
    said = [predicted_verdict(image, {}, thresholds) for image in images]
    metrics = image_level_metrics(truths, said, classes)
    cells = [f"{metrics.per_class[c].f1 or 0:.2f}" for c in classes] + [f"{metrics.damaged_caught or 0:.2f}"]
    for other in (True, False):
        clean = [
            s.is_none
            for p, t, s in zip(photos, truths, said, strict=True)
            if t.is_none and p.image_id.split("/")[-1].startswith(OTHER_SOURCE_PREFIX) is other
        ]
        cells.append(f"{np.mean(clean):.2f} ({sum(clean)}/{len(clean)})" if clean else "-")
    return " | ".join(cells)


def probabilities(classifier: PhotoClassifier, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(classifier.logits(x)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, default=TrainConfig.model_fields["imgsz"].default)
    parser.add_argument("--l2", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    parser.add_argument("--variant", default=TrainConfig().lite.variant, help="the frozen ImageNet backbone")
    args = parser.parse_args()
    layout, config = DatasetLayout(args.data), TrainConfig(imgsz=args.imgsz)
    classes = layout.names
    classifier = PhotoClassifier(args.variant, len(classes))
    features, photos = {}, {}
    for split in (Split.TRAIN, Split.VAL, Split.TEST):
        data = LayoutSplit(layout, split, args.imgsz, config.lite, augment=False)
        features[split] = classifier.pooled_features(data, mirrored=split is Split.TRAIN)
        photos[split] = load_split(layout, split)
        assert [p.image_id for p in photos[split]] == [item.key for item in data.items]
    x, y = features[Split.TRAIN]
    fold = np.random.default_rng(0).permutation(len(photos[Split.TRAIN])) % FOLDS
    fold_of_row = np.repeat(fold, 2)  # each photo's mirror image stays in its fold
    print(f"photo classifier alone, {args.imgsz} px, {args.variant}")
    cells = [f"F1 {label}" for label in classes] + ["caught", "None, other sources", "None, same sources"]
    print("| L2 | " + " | ".join([f"test {c}" for c in cells] + [f"out of fold {c}" for c in cells]) + " |")
    print("|---" * (1 + 2 * len(cells)) + "|")
    for l2 in args.l2:
        classifier.fit(x, y, l2)
        val_answers = answered(photos[Split.VAL], probabilities(classifier, features[Split.VAL][0]), classes)
        val_thresholds = calibrate_presence(val_answers, classes)
        assert val_thresholds is not None
        test = figures(photos[Split.TEST], probabilities(classifier, features[Split.TEST][0]), val_thresholds)
        out_of_fold = np.zeros((len(photos[Split.TRAIN]), len(classes)))
        for k in range(FOLDS):
            rows = torch.from_numpy(fold_of_row != k)
            classifier.fit(x[rows], y[rows], l2)
            originals = torch.from_numpy((fold_of_row == k) & (np.arange(len(x)) % 2 == 0))
            out_of_fold[fold == k] = probabilities(classifier, x[originals])
        oof_thresholds = calibrate_presence(answered(photos[Split.TRAIN], out_of_fold, classes), classes)
        assert oof_thresholds is not None
        print(f"| {l2} | {test} | {figures(photos[Split.TRAIN], out_of_fold, oof_thresholds)} |")


if __name__ == "__main__":
    main()
