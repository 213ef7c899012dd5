"""CPU speed of the Detector against a bare ONNX Runtime session running the same model on the same inputs.

Run: ``.venv/bin/python benchmarks/inference_speed.py [--model PATH] [--data ../shared/data/car-damage]
[--images 16] [--repeats 9]``

The bare session gets the photos already letterboxed, so the difference is everything the Detector adds: letterbox,
output checks, decoding, NMS, thresholds and building the answer. Both run in the same process with ONNX Runtime's
default threads, alternating batch by batch, so the ratio holds even when the machine's speed drifts.

Without ``--model`` an untrained stand-in is exported once into a temp folder: timm ``efficientnet_lite0`` features
(strides 8/16/32; random weights, since timing needs no training) with a small FCOS-like 96-channel head and a
top-300 decode to ``[N, 300, 6]`` at 640 px. Its scores sit near the head's 0.01 prior, above the candidate floor,
so every photo sends all 300 rows through NMS: the post-processing worst case. Its run is short (about 40 ms a
photo on 2 cores), which makes it the strict case for the overhead; the ``lite`` backend's own graph (FPN P2-P7,
4-conv FCOS tower) runs several times longer, so measure an exported one with ``--model``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import timm
import torch

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ModelMetadata
from autoinspect.images import decode_image
from autoinspect.inference import Detector, Prediction, letterbox_batch
from autoinspect.onnx_metadata import write_metadata

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage"
BATCH_SIZES = (1, 4, 8)
STAND_IN_SIZE = 640
STAND_IN_CLASSES = ["scratch", "dent"]
SETTLE_S = 0.01

RGBImage = npt.NDArray[np.uint8]


class StandIn(torch.nn.Module):
    """EfficientNet-Lite0 features, a shared FCOS-like head per level, the best 300 locations as detection rows."""

    def __init__(self, classes: int = 2, channels: int = 96, top_k: int = 300) -> None:
        super().__init__()
        self.backbone = timm.create_model(
            "efficientnet_lite0", pretrained=False, features_only=True, out_indices=(2, 3, 4)
        )
        self.strides = list(self.backbone.feature_info.reduction())
        self.lateral = torch.nn.ModuleList(
            torch.nn.Conv2d(width, channels, 1) for width in self.backbone.feature_info.channels()
        )
        self.tower = torch.nn.Sequential(
            torch.nn.Conv2d(channels, channels, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(channels, channels, 3, padding=1),
            torch.nn.ReLU(),
        )
        self.classify = torch.nn.Conv2d(channels, classes, 3, padding=1)
        torch.nn.init.constant_(self.classify.bias, -4.6)  # FCOS/RetinaNet prior: scores start near 0.01
        self.regress = torch.nn.Conv2d(channels, 4, 3, padding=1)
        self.top_k = top_k

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores, boxes = [], []
        for feature, lateral, stride in zip(self.backbone(images), self.lateral, self.strides, strict=True):
            level = self.tower(lateral(feature))
            scores.append(self.classify(level).sigmoid().flatten(2))
            boxes.append(self._boxes(self.regress(level), stride))
        best, class_ids = torch.cat(scores, dim=2).max(dim=1)
        top, index = best.topk(self.top_k, dim=1)
        kept = torch.gather(torch.cat(boxes, dim=1), 1, index.unsqueeze(2).expand(-1, -1, 4))
        labels = torch.gather(class_ids, 1, index).float()
        return torch.cat([kept, top.unsqueeze(2), labels.unsqueeze(2)], dim=2)

    @staticmethod
    def _boxes(distances: torch.Tensor, stride: int) -> torch.Tensor:
        """``[N, H*W, 4]`` boxes from left/top/right/bottom distances predicted at each cell centre."""
        _, _, height, width = distances.shape
        ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        centres = (torch.stack([xs, ys, xs, ys]).flatten(1).float() + 0.5) * stride
        signs = torch.tensor([-1.0, -1.0, 1.0, 1.0]).unsqueeze(1)
        return (centres + signs * distances.exp().flatten(2) * stride * 4).transpose(1, 2)


def export_stand_in(folder: Path) -> Path:
    path = folder / "stand-in.onnx"
    torch.onnx.export(
        StandIn(len(STAND_IN_CLASSES)).eval(),
        (torch.zeros(1, 3, STAND_IN_SIZE, STAND_IN_SIZE),),
        str(path),
        input_names=[ONNX_INPUT],
        output_names=[ONNX_OUTPUT],
        dynamic_shapes=({0: torch.export.Dim("batch", max=64)},),
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    metadata = ModelMetadata(
        classes=STAND_IN_CLASSES,
        input_size=STAND_IN_SIZE,
        backend="stand-in (untrained)",
        score_thresholds=dict.fromkeys(STAND_IN_CLASSES, 0.25),
    )
    write_metadata(path, metadata)
    return path


def pick_photos(data: Path, count: int) -> list[RGBImage]:
    """``count`` test photos spread evenly over the sorted names, so every source and aspect shows up."""
    paths = sorted((data / "images" / "test").iterdir())
    step = max(1, len(paths) // count)
    return [decode_image(path).rgb for path in paths[::step][:count]]


def interleaved_pass(
    detector: Detector, bare: ort.InferenceSession, groups: list[Sequence[RGBImage]]
) -> tuple[float, float, list[Prediction]]:
    """Seconds of the bare session and of the Detector over all groups, alternating group by group.

    Alternating each batch keeps both paths under the same load when other work shares the machine's cores; the
    short pause before each timed call lets the other session's worker threads stop spinning first.
    """
    bare_s = detector_s = 0.0
    predictions: list[Prediction] = []
    for group in groups:
        batch, _ = letterbox_batch(group, detector.metadata.input_size)
        time.sleep(SETTLE_S)
        started = time.perf_counter()
        bare.run([ONNX_OUTPUT], {ONNX_INPUT: batch})
        bare_s += time.perf_counter() - started
        time.sleep(SETTLE_S)
        started = time.perf_counter()
        predictions += detector.predict_batch(group)
        detector_s += time.perf_counter() - started
    return bare_s, detector_s, predictions


def measure(model: Path, photos: list[RGBImage], repeats: int) -> list[str]:
    """Markdown rows: images/s of both paths per batch size, the Detector's overhead and its steps."""
    detector = Detector(model, max_batch_size=max(BATCH_SIZES))
    bare = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    lines = []
    for batch_size in BATCH_SIZES:
        groups = [photos[start : start + batch_size] for start in range(0, len(photos), batch_size)]
        interleaved_pass(detector, bare, groups)  # warm up both sessions at this batch size
        passes = [interleaved_pass(detector, bare, groups) for _ in range(repeats)]
        bare_s = statistics.median(seconds for seconds, _, _ in passes)
        detector_s = statistics.median(seconds for _, seconds, _ in passes)
        predictions = [prediction for _, _, answers in passes for prediction in answers]
        steps = [
            statistics.median(getattr(p.timing, step) for p in predictions) for step in ("pre_ms", "run_ms", "post_ms")
        ]
        candidates = statistics.median(len(p.candidates) for p in predictions)
        lines.append(
            f"| {batch_size} | {len(photos) / bare_s:.1f} | {len(photos) / detector_s:.1f} | "
            f"{100 * (detector_s / bare_s - 1):+.1f} % | {steps[0]:.1f} / {steps[1]:.1f} / {steps[2]:.1f} | "
            f"{candidates:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the untrained stand-in")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photos = pick_photos(args.data, args.images)
    with tempfile.TemporaryDirectory() as folder:
        if args.model:
            model, label = args.model, str(args.model)
        else:
            started = time.perf_counter()
            model = export_stand_in(Path(folder))
            label = "UNTRAINED STAND-IN: efficientnet_lite0 + small FCOS-like head + top-300 decode, random weights"
            print(
                f"exported the stand-in in {time.perf_counter() - started:.0f} s ({model.stat().st_size / 1e6:.1f} MB)"
            )
        load_before = os.getloadavg()[0]
        rows = measure(model, photos, args.repeats)
        load_after = os.getloadavg()[0]
    sizes = sorted({f"{rgb.shape[1]}x{rgb.shape[0]}" for rgb in photos})
    print(f"model: {label}")
    print(
        f"photos: {len(photos)} ({', '.join(sizes)}), cores: {os.cpu_count()}, onnxruntime {ort.__version__}, "
        f"default threads, repeats: {args.repeats} (median)"
    )
    print(f"1-min load average before / after: {load_before:.2f} / {load_after:.2f} (other work skews both columns)")
    print(
        "| batch | bare ORT img/s | Detector img/s | Detector overhead | pre / run / post ms per photo | candidates |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
