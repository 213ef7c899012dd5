"""CPU speed of the Detector against a bare ONNX Runtime session running the same model on the same inputs.

Run: ``.venv/bin/python benchmarks/inference_speed.py [--model PATH] [--data ../shared/data/car-damage]
[--images 16] [--repeats 9]``

The bare session gets the photos already letterboxed, so the difference is everything the Detector adds: letterbox,
output checks, decoding, NMS, thresholds and building the answer. Both run in the same process with ONNX Runtime's
default threads, taking turns pass by pass, so the ratio holds even when the machine's speed drifts.

Without ``--model`` the ``lite`` backend's own graph is exported once at 640 px into a temp folder (ImageNet
backbone, untrained head): what a trained lite model costs, since timing depends on the graph, not the weights.
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

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ModelMetadata
from autoinspect.images import decode_image
from autoinspect.inference import Detector, Prediction, letterbox_batch
from autoinspect.onnx_metadata import write_metadata
from autoinspect.training.base import LiteConfig, TrainConfig
from autoinspect.training.lite.export import ContractDetector, contract_detector, export_onnx
from autoinspect.training.lite.model import build_detector
from autoinspect.training.lite.photo_classifier import PhotoClassifier
from machine_guard import MachineGuard, add_strict_flag, settle

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage"
BATCH_SIZES = (1, 4, 8)
IMGSZ = 640
DEFAULT_IMGSZ: int = TrainConfig.model_fields["imgsz"].default
"""The default recipe's serving size."""
CLASSES = ["scratch", "dent"]

RGBImage = npt.NDArray[np.uint8]


def export_lite(folder: Path) -> Path:
    """The ``lite`` backend's own graph at 640 px, exported by its own exporter: ImageNet backbone, untrained
    FPN and head. Timing does not depend on the weights, only on the graph, so this is what a trained lite model
    costs; its near-prior scores keep every photo's candidate list long, the post-processing worst case."""
    module = ContractDetector(build_detector(LiteConfig(), len(CLASSES), IMGSZ), IMGSZ)
    path = export_onnx(module, folder / "lite.onnx")
    metadata = ModelMetadata(
        classes=CLASSES,
        input_size=IMGSZ,
        backend="lite (untrained head)",
        score_thresholds=dict.fromkeys(CLASSES, 0.25),
    )
    write_metadata(path, metadata)
    return path


def export_default_graph(folder: Path, imgsz: int = DEFAULT_IMGSZ) -> Path:
    """The default recipe's graph (``autoinspect train`` with no option: light head, presence head, the photo
    classifier's second backbone) at ``imgsz``, ImageNet backbones and untrained heads: what the default served
    model costs, since timing depends on the graph, not the weights."""
    config = TrainConfig(imgsz=imgsz)
    model = build_detector(config.lite, len(CLASSES), imgsz)
    photo = PhotoClassifier(config.lite.variant, len(CLASSES))
    path = export_onnx(contract_detector(model, config, photo), folder / "default-recipe.onnx")
    write_metadata(
        path,
        ModelMetadata(
            classes=CLASSES,
            input_size=imgsz,
            backend="lite (untrained heads)",
            score_thresholds=dict.fromkeys(CLASSES, 0.25),
            presence_thresholds=dict.fromkeys(CLASSES, 0.5),
        ),
    )
    return path


def pick_photos(data: Path, count: int) -> list[RGBImage]:
    """``count`` test photos spread evenly over the sorted names, so every source and aspect shows up."""
    paths = sorted((data / "images" / "test").iterdir())
    step = max(1, len(paths) // count)
    return [decode_image(path).rgb for path in paths[::step][:count]]


def bare_pass(session: ort.InferenceSession, inputs: list[npt.NDArray[np.float32]]) -> float:
    """Seconds for the bare session to run every pre-letterboxed batch."""
    started = time.perf_counter()
    for batch in inputs:
        session.run([ONNX_OUTPUT], {ONNX_INPUT: batch})
    return time.perf_counter() - started


def detector_pass(detector: Detector, groups: list[Sequence[RGBImage]]) -> tuple[float, list[Prediction]]:
    """Seconds for the Detector to answer every group of photos, and its answers."""
    started = time.perf_counter()
    predictions = [prediction for group in groups for prediction in detector.predict_batch(group)]
    return time.perf_counter() - started, predictions


def measure(model: Path, photos: list[RGBImage], repeats: int) -> list[str]:
    """Markdown rows: images/s of both paths per batch size, the Detector's overhead and its steps; each row
    keeps a ``{mark}`` field after the batch size for the machine guard's verdict (``row.format(mark=...)``).

    The paths alternate pass by pass (all photos each), not batch by batch: two sessions taking turns on every
    batch evict each other's weights from the CPU caches and both run about 30 % slower than either alone.
    """
    detector = Detector(model, max_batch_size=max(BATCH_SIZES))
    bare = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    lines = []
    for batch_size in BATCH_SIZES:
        groups = [photos[start : start + batch_size] for start in range(0, len(photos), batch_size)]
        inputs = [letterbox_batch(group, detector.metadata.input_size)[0] for group in groups]
        bare_pass(bare, inputs), detector_pass(detector, groups)  # warm up both sessions at this batch size
        bare_s, detector_s, predictions = [], [], []
        for _ in range(repeats):
            bare_s.append(bare_pass(bare, inputs))
            seconds, answers = detector_pass(detector, groups)
            detector_s.append(seconds)
            predictions += answers
        bare_median, detector_median = statistics.median(bare_s), statistics.median(detector_s)
        steps = [
            statistics.median(getattr(p.timing, step) for p in predictions) for step in ("pre_ms", "run_ms", "post_ms")
        ]
        candidates = statistics.median(len(p.candidates) for p in predictions)
        lines.append(
            f"| {batch_size}{{mark}} | {len(photos) / bare_median:.1f} | {len(photos) / detector_median:.1f} | "
            f"{100 * (detector_median / bare_median - 1):+.1f} % | {steps[0]:.1f} / {steps[1]:.1f} / {steps[2]:.1f} | "
            f"{candidates:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an exported detector; default: the lite graph")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=9)
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photos = pick_photos(args.data, args.images)
    with tempfile.TemporaryDirectory() as folder:
        if args.model:
            model, label = args.model, str(args.model)
        else:
            started = time.perf_counter()
            model = export_lite(Path(folder))
            label = f"lite graph at {IMGSZ} px (efficientnet_lite0 ImageNet backbone, untrained FPN + FCOS head)"
            seconds, megabytes = time.perf_counter() - started, model.stat().st_size / 1e6
            print(f"exported the lite graph in {seconds:.0f} s ({megabytes:.1f} MB)")
        guard = MachineGuard()
        rows = measure(model, photos, args.repeats)
        machine = guard.finish()
    sizes = sorted({f"{rgb.shape[1]}x{rgb.shape[0]}" for rgb in photos})
    print(f"model: {label}")
    print(
        f"photos: {len(photos)} ({', '.join(sizes)}), cores: {os.cpu_count()}, onnxruntime {ort.__version__}, "
        f"default threads, repeats: {args.repeats} (median)"
    )
    mark = settle(machine, strict=args.strict)
    print(
        "| batch | bare ORT img/s | Detector img/s | Detector overhead | pre / run / post ms per photo | candidates |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(row.format(mark=mark))


if __name__ == "__main__":
    main()
