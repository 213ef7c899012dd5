"""Evaluate a lite training checkpoint (``best.pt``) exactly as ``autoinspect train`` ends: export, calibrate on
val, measure the test split. For runs stopped before their last epoch, whose ``best.pt`` is all they left, and for
ablations of what happens after training (the presence blend and box rescoring) on one trained detector.

Run: .venv/bin/python benchmarks/evaluate_checkpoint.py RUN_DIR/best.pt --imgsz 384 --out /tmp/eval
     [--data ../shared/data/car-damage-full] [--config run.yaml]
     [--photo-weights 0 0.5 1] [--box-weights 0 0.5] [--mirrored]

``--config`` is the run's YAML (``autoinspect train --config``), whose ``lite`` options shape the network and
the photo classifier (fitted here once, as at the end of training). Without ``--photo-weights`` /
``--box-weights`` the recipe's own ``lite.photo_weight`` and ``lite.box_presence_weight`` are used; with them,
every combination is exported to ``OUT/photo<w>-box<b>/`` and measured, and one quality-table row (see
``quality_row.py``) is printed per combination. ``--mirrored`` measures every combination also with
``lite.mirrored_inference`` (each photo run mirrored too, outputs averaged), in ``OUT/photo<w>-box<b>-mirrored/``.
"""

from __future__ import annotations

import argparse
import itertools
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
from quality_row import HEADER, SEPARATOR, row

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "car-damage-full"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--imgsz", type=int, required=True, help="the serving size the run was trained for")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--config", type=Path, help="the run's YAML, for its lite options (default: the defaults)")
    parser.add_argument("--photo-weights", type=float, nargs="+", help="lite.photo_weight values to compare")
    parser.add_argument("--box-weights", type=float, nargs="+", help="lite.box_presence_weight values to compare")
    parser.add_argument("--mirrored", action="store_true", help="also measure lite.mirrored_inference")
    args = parser.parse_args()
    layout = DatasetLayout(args.data)
    options = yaml.safe_load(args.config.read_text()) if args.config else {}
    config = TrainConfig.model_validate({**options, "imgsz": args.imgsz})
    model = build_detector(config.lite, len(layout.names), args.imgsz, pretrained=False)
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    photo_weights = args.photo_weights or [config.lite.photo_weight]
    box_weights = args.box_weights or [config.lite.box_presence_weight]
    fitted = config.model_copy(update={"lite": config.lite.model_copy(update={"photo_weight": max(photo_weights)})})
    photo = fit_photo_classifier(layout, fitted)
    val, test = load_split(layout, Split.VAL), load_split(layout, Split.TEST)
    threshold = TrainConfig.model_fields["score_threshold"].default
    metadata = ModelMetadata(
        classes=layout.names,
        input_size=args.imgsz,
        backend="lite",
        score_thresholds=dict.fromkeys(layout.names, threshold),
    )
    rows = []
    mirrored_values = [False, True] if args.mirrored else [config.lite.mirrored_inference]
    for photo_weight, box_weight, mirrored in itertools.product(photo_weights, box_weights, mirrored_values):
        update = {"photo_weight": photo_weight, "box_presence_weight": box_weight, "mirrored_inference": mirrored}
        variant = config.model_copy(update={"lite": config.lite.model_copy(update=update)})
        name = f"photo_weight {photo_weight:g}, box_presence_weight {box_weight:g}" + (", mirrored" if mirrored else "")
        out = args.out / (f"photo{photo_weight:g}-box{box_weight:g}" + ("-mirrored" if mirrored else ""))
        onnx_path = export_onnx(contract_detector(model, variant, photo), out / "model.onnx")
        write_metadata(onnx_path, metadata)
        evaluation = calibrate_and_evaluate(onnx_path, val, test, out / "evaluation")
        print(evaluation.evaluation_json)
        rows.append(row(name, evaluation, None))
    print(HEADER, SEPARATOR, *rows, sep="\n")


if __name__ == "__main__":
    main()
