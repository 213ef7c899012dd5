"""A real MLflow SQLite store per test, and a real tiny ONNX detector that follows the model contract.

Creating an MLflow database runs its migrations (seconds), so one empty database is made per session and each
test gets a copy of it: every test starts from an empty, isolated registry at the cost of a file copy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from autoinspect.config import Settings
from autoinspect.domain import ONNX_INPUT, ONNX_METADATA_KEY, ONNX_OUTPUT, DatasetRef, ModelMetadata
from autoinspect.registry.mlflow_registry import register_model
from autoinspect.training.tracking import MlflowTracker

INPUT_SIZE = 32
DETECTIONS = [
    [8.0, 8.0, 24.0, 24.0, 0.9, 0.0],
    [4.0, 12.0, 12.0, 20.0, 0.4, 1.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
]
"""What the tiny model outputs for every image, in input pixels; the last row is padding."""


@pytest.fixture
def metadata() -> ModelMetadata:
    return ModelMetadata(
        classes=["scratch", "dent"],
        input_size=INPUT_SIZE,
        backend="lite",
        score_thresholds={"scratch": 0.3, "dent": 0.35},
    )


@pytest.fixture
def dataset() -> DatasetRef:
    return DatasetRef(name="car-damage", digest="ab" * 32)


@pytest.fixture
def onnx_model(tmp_path: Path, metadata: ModelMetadata) -> Path:
    """``images [N, 3, 32, 32] -> detections [N, 3, 6]``: fixed rows per image, tied to the input's batch size."""
    images = helper.make_tensor_value_info(ONNX_INPUT, TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])
    detections = helper.make_tensor_value_info(ONNX_OUTPUT, TensorProto.FLOAT, ["N", len(DETECTIONS), 6])
    rows = np.asarray([DETECTIONS], dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMean", [ONNX_INPUT], ["mean"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "shape"], ["per_image"]),
        helper.make_node("Mul", ["per_image", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "rows"], [ONNX_OUTPUT]),
    ]
    initializers = [
        helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 1, 1]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("rows", TensorProto.FLOAT, list(rows.shape), rows.flatten().tolist()),
    ]
    graph = helper.make_graph(nodes, "tiny-detector", [images], [detections], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    helper.set_model_props(model, {ONNX_METADATA_KEY: metadata.model_dump_json()})
    onnx.checker.check_model(model)
    path = tmp_path / "best.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture
def evaluation_json(tmp_path: Path) -> Path:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"map50": 0.5}), encoding="utf-8")
    return path


@pytest.fixture
def reference_csv(tmp_path: Path) -> Path:
    path = tmp_path / "features.csv"
    path.write_text("image,brightness\na.jpg,0.5\n", encoding="utf-8")
    return path


@pytest.fixture
def training_run(tracked_settings: Settings, dataset: DatasetRef) -> str:
    """A finished training run to register into, as the tracker leaves one."""
    with MlflowTracker(tracked_settings, dataset, run_name="train") as tracker:
        run_id = tracker.run_id
    return run_id


@pytest.fixture
def two_versions(
    tracked_settings: Settings,
    training_run: str,
    onnx_model: Path,
    metadata: ModelMetadata,
    evaluation_json: Path,
    dataset: DatasetRef,
) -> Settings:
    for map50 in (0.5, 0.6):
        register_model(
            tracked_settings,
            run_id=training_run,
            onnx_path=onnx_model,
            metadata=metadata,
            evaluation_json=evaluation_json,
            flat_metrics={"map50": map50},
            reference_features_csv=None,
            dataset=dataset,
            thresholds={"scratch": 0.3, "dent": 0.3},
        )
    return tracked_settings
