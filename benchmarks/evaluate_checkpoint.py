"""Evaluate a lite training checkpoint (``best.pt``) exactly as ``autoinspect train`` ends: export, calibrate on
val, measure the test split. For runs stopped before their last epoch, whose ``best.pt`` is all they left.

Run: .venv/bin/python benchmarks/evaluate_checkpoint.py RUN_DIR/best.pt --imgsz 384 --out /tmp/eval
     [--data ../shared/data/car-damage-full] [--config run.yaml]

``--config`` is the run's YAML (``autoinspect train --config``), whose ``lite`` options shape the network and
the photo classifier (fitted here, as at the end of training; ``lite: {photo_weight: 0}`` leaves it out).
then: .venv/bin/python benchmarks/quality_row.py /tmp/eval/evaluation/evaluation.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml

from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import ModelMetadata, Split
from autoinspect.onnx_metadata import write_metadata
from autoinspect.pipelines.labelled_photos import load_split
from autoinspect.pipelines.model_evaluation import calibrate_and_evaluate
from autoinspect.training.base import TrainConfig
from autoinspect.training.lite.export import contract_detector, export_onnx
from autoinspect.training.lite.model import build_detector
from autoinspect.training.lite.photo_classifier import fit_photo_classifier

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage-full"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--imgsz", type=int, required=True, help="the serving size the run was trained for")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, help="the run's YAML, for its lite options (default: the defaults)")
    args = parser.parse_args()
    layout = DatasetLayout(args.data)
    options = yaml.safe_load(args.config.read_text()) if args.config else {}
    config = TrainConfig.model_validate({**options, "imgsz": args.imgsz})
    model = build_detector(config.lite, len(layout.names), args.imgsz, pretrained=False)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    photo = fit_photo_classifier(layout, config)
    module = contract_detector(model.eval(), config, photo)
    onnx_path = export_onnx(module, args.out / "model.onnx")
    threshold = TrainConfig.model_fields["score_threshold"].default
    metadata = ModelMetadata(
        classes=layout.names,
        input_size=args.imgsz,
        backend="lite",
        score_thresholds=dict.fromkeys(layout.names, threshold),
    )
    write_metadata(onnx_path, metadata)
    val, test = load_split(layout, Split.VAL), load_split(layout, Split.TEST)
    evaluation = calibrate_and_evaluate(onnx_path, val, test, args.out / "evaluation")
    print(evaluation.evaluation_json)


if __name__ == "__main__":
    main()
