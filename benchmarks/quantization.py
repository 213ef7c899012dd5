"""Float against int8: the Detector's time per photo and, for a trained model, the test figures of both.

Run (speed only, any machine): ``.venv/bin/python benchmarks/quantization.py [--imgsz 384]``: the default recipe's
graph (lite backbone, light head, the photo classifier's second backbone) with ImageNet weights and untrained
heads, exported now; timing depends on the graph, not on the weights.

Run (a trained model): ``.venv/bin/python benchmarks/quantization.py --model <run>/model.onnx --data
../shared/data/car-damage-full``: the model is quantized as ``autoinspect quantize`` does (the same function, the
first ``--calibration-photos`` val photos), then both files are evaluated as the training's evaluation step does
(thresholds calibrated on val, figures on test) and timed.

Timing: the Detector at batch 1 on the same test photos, the two models taking turns photo by photo, with ONNX
Runtime's default threads; inside the machine guard (see ``machine_guard.py``).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import Split
from autoinspect.inference import Detector, letterbox_batch
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import calibrate_and_evaluate
from autoinspect.training.base import TrainConfig
from autoinspect.training.quantization import quantize_model
from inference_speed import DEFAULT_DATA, export_default_graph, pick_photos
from machine_guard import MachineGuard, add_strict_flag, settle
from quality_row import HEADER, SEPARATOR, row


def time_both(models: dict[str, Path], photos: list[np.ndarray], repeats: int) -> dict[str, list[float]]:
    """Milliseconds per photo at batch 1 for each model, the models taking turns photo by photo."""
    detectors = {name: Detector(path) for name, path in models.items()}
    for detector in detectors.values():
        detector.predict(photos[0])  # warm-up: session start, allocations
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in range(repeats):
        for photo in photos:
            for name, detector in detectors.items():
                started = time.perf_counter()
                detector.predict(photo)
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a trained float model; default: the default graph, untrained")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="val calibrates, test measures")
    parser.add_argument("--imgsz", type=int, default=TrainConfig.model_fields["imgsz"].default)
    parser.add_argument("--calibration-photos", type=int, default=64)
    parser.add_argument("--images", type=int, default=16, help="test photos timed")
    parser.add_argument("--repeats", type=int, default=5)
    add_strict_flag(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("TQDM_DISABLE", "1")
    layout = DatasetLayout(args.data)
    val = load_split(layout, Split.VAL)
    with tempfile.TemporaryDirectory(prefix="autoinspect-quantization-") as tmp:
        folder = Path(tmp)
        if args.model:
            source = folder / "float.onnx"
            shutil.copyfile(args.model, source)  # evaluation writes thresholds into the file: work on a copy
        else:
            source = export_default_graph(folder, args.imgsz)
        size = Detector(source).metadata.input_size
        batch, _ = letterbox_batch([photo.rgb for photo in val[: args.calibration_photos]], size)
        started = time.perf_counter()
        quantize_model(source, [batch[i : i + 1] for i in range(len(batch))], folder / "int8.onnx")
        print(f"quantized in {time.perf_counter() - started:.0f} s on {len(batch)} val photos")
        models = {"float32": source, "int8": folder / "int8.onnx"}
        for name, path in models.items():
            print(f"{name}: {path.stat().st_size / 1e6:.1f} MB")
        if args.model:
            test = load_split(layout, Split.TEST)
            print(HEADER)
            print(SEPARATOR)
            for name, path in models.items():
                evaluation = calibrate_and_evaluate(path, val, test, folder / f"{name}-evaluation")
                print(row(name, evaluation, None))
        photos = pick_photos(args.data, args.images)
        guard = MachineGuard()
        times = time_both(models, photos, args.repeats)
        machine = guard.finish()
    mark = settle(machine, strict=args.strict)
    label = args.model or f"the default recipe's graph at {size} px, untrained heads"
    print(f"model: {label}; {len(photos)} test photos x {args.repeats}, batch 1, cores: {os.cpu_count()}")
    print("| model | ms per photo, p50 | p90 | ratio to float32 |")
    print("|---|---|---|---|")
    reference = statistics.median(times["float32"])
    for name, values in times.items():
        p50, p90 = statistics.median(values), float(np.percentile(values, 90))
        print(f"| {name}{mark} | {p50:.1f} | {p90:.1f} | {p50 / reference:.2f} |")


if __name__ == "__main__":
    main()
