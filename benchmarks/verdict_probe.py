"""How separable damaged and clean photos are from pooled ImageNet EfficientNet-Lite0 features (no fine-tuning).

Run: .venv/bin/python benchmarks/verdict_probe.py [--imgsz 512]

A logistic regression on average- and max-pooled stride-16/32 features, fitted on train, threshold chosen on val
(best caught with >= 90 % of clean val cars answered "None"), measured on test: the ceiling an image-level
verdict head could start from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.training.lite.backbone import INPUT_MEAN, INPUT_STD, LiteFeatures
from autoinspect.training.lite.dataset import to_input

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage"


def features(layout: DatasetLayout, split: Split, imgsz: int, body: LiteFeatures) -> tuple[np.ndarray, np.ndarray]:
    rows, damaged = [], []
    mean, std = torch.tensor(INPUT_MEAN).view(1, 3, 1, 1), torch.tensor(INPUT_STD).view(1, 3, 1, 1)
    for photo in load_split(layout, split):
        x = (to_input(photo.rgb, imgsz)[0][None] - mean) / std
        with torch.no_grad():
            maps = body(x)[-2:]
        rows.append(torch.cat([torch.cat([m.mean((2, 3)), m.amax((2, 3))], 1) for m in maps], 1)[0].numpy())
        damaged.append(int(bool(photo.truth)))
    return np.array(rows), np.array(damaged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, default=512)
    args = parser.parse_args()
    layout = DatasetLayout(args.data)
    body = LiteFeatures("efficientnet_lite0").eval()
    data = {split: features(layout, split, args.imgsz, body) for split in (Split.TRAIN, Split.VAL, Split.TEST)}
    scaler = StandardScaler().fit(data[Split.TRAIN][0])
    for c in (0.01, 0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
        model.fit(scaler.transform(data[Split.TRAIN][0]), data[Split.TRAIN][1])
        p = {s: model.predict_proba(scaler.transform(x))[:, 1] for s, (x, _) in data.items()}
        yv, yt = data[Split.VAL][1], data[Split.TEST][1]
        ok = [t for t in sorted(set(p[Split.VAL])) if np.mean(p[Split.VAL][yv == 0] < t) >= 0.9]
        t = max(ok, key=lambda t: np.mean(p[Split.VAL][yv == 1] >= t)) if ok else 0.5
        print(
            f"C={c}: ROC AUC val {roc_auc_score(yv, p[Split.VAL]):.3f} test {roc_auc_score(yt, p[Split.TEST]):.3f}; "
            f"threshold {t:.3f}: test damaged caught {np.mean(p[Split.TEST][yt == 1] >= t):.3f}, "
            f"clean None {np.mean(p[Split.TEST][yt == 0] < t):.3f}"
        )


if __name__ == "__main__":
    main()
