"""Detection quality on the real sample: each AutoInspect backend against plain Ultralytics CLI training.

Run (GPU, the budget of the issue):  .venv/bin/python benchmarks/quality.py --epochs 60 --imgsz 640 --device cuda
Run (CPU smoke size, any machine):   .venv/bin/python benchmarks/quality.py --smoke

Every model, the reference included, is exported to the model contract and measured by the same evaluator
through the same Detector on the gold test split, at per-class thresholds calibrated on val. The reference is
``yolo detect train`` run as a separate process with the same data, epochs, image size and batch, from the same
architecture file (no pretrained weights can be fetched here).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.data.versions import DatasetStore
from autoinspect.domain import ModelMetadata, Split
from autoinspect.onnx_metadata import write_metadata
from autoinspect.pipelines.dataset import version_dataset
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import ModelEvaluation, calibrate_and_evaluate
from autoinspect.pipelines.training import train_model
from autoinspect.training.base import TrainConfig
from autoinspect.training.yolo_backend import export_contract_onnx, ultralytics_device, write_data_view
from autoinspect.training.yolo_offline import prepare_ultralytics
from quality_row import HEADER, SEPARATOR, row

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage"
TARGET_AP50 = 0.35
TARGET_CLEAN_NONE = 0.90
TARGET_CAUGHT = 0.85


def reference_run(layout: DatasetLayout, config: TrainConfig, work: Path, settings: Settings) -> ModelEvaluation:
    """Plain ``yolo detect train`` in its own process, then the same export and evaluation as ours."""
    prepare_ultralytics(settings.home / "ultralytics")
    data_yaml = write_data_view(layout, work / "reference-data")
    command = [
        str(Path(sys.executable).with_name("yolo")),
        "detect",
        "train",
        f"data={data_yaml}",
        f"model={config.yolo.model}",
        f"epochs={config.epochs}",
        f"imgsz={config.imgsz}",
        f"batch={config.batch}",
        f"device={ultralytics_device(config.device)}",
        f"project={work}",
        "name=reference",
        "exist_ok=True",
        "amp=False",
        "plots=False",
        f"workers={config.workers}",
    ]
    subprocess.run(command, check=True, cwd=work, env=os.environ.copy(), stdout=subprocess.DEVNULL)
    weights = work / "reference" / "weights" / "best.pt"
    onnx_path = export_contract_onnx(weights, config.imgsz, len(layout.names), work / "reference.onnx")
    write_metadata(
        onnx_path,
        ModelMetadata(
            classes=layout.names,
            input_size=config.imgsz,
            backend="ultralytics-cli",
            score_thresholds=dict.fromkeys(layout.names, config.score_threshold),
        ),
    )
    val, test = load_split(layout, Split.VAL), load_split(layout, Split.TEST)
    return calibrate_and_evaluate(onnx_path, val, test, work / "reference-evaluation")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backends", nargs="+", default=["lite", "yolo", "reference"])
    parser.add_argument("--smoke", action="store_true", help="CPU size: 3 epochs at 320 px, batch 8")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.imgsz, args.batch, args.device = 3, 320, 8, "cpu"
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TQDM_DISABLE", "1")
    work = Path(tempfile.mkdtemp(prefix="autoinspect-quality-"))
    settings = Settings(home=work / "home")
    manifest, _ = version_dataset(DatasetLayout(args.data), "car-damage", settings)
    layout = DatasetStore(settings.datasets_dir).materialise(manifest, settings.checkouts_dir)
    rows = []
    for backend in args.backends:
        config = TrainConfig(
            backend="yolo" if backend == "reference" else backend,
            epochs=args.epochs,
            imgsz=args.imgsz,
            batch=args.batch,
            device=args.device,
            patience=max(10, args.epochs // 3),
        )
        started = time.perf_counter()
        if backend == "reference":
            evaluation = reference_run(layout, config, work, settings)
            name = f"reference: yolo CLI ({config.yolo.model})"
        else:
            evaluation = train_model(settings, manifest.digest, config).evaluation
            name = f"autoinspect {backend}"
        rows.append(row(name, evaluation, (time.perf_counter() - started) / 60))
    print(
        f"data: {args.data} ({manifest.ref.short}), epochs {args.epochs}, imgsz {args.imgsz}, batch {args.batch}, "
        f"device {args.device}; test split, thresholds calibrated on val"
    )
    print(HEADER)
    print(SEPARATOR)
    print("\n".join(rows))
    print(f"targets: AP50 >= {TARGET_AP50} per class, clean None >= {TARGET_CLEAN_NONE}, caught >= {TARGET_CAUGHT}")


if __name__ == "__main__":
    main()
