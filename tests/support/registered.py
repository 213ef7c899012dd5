"""Registering a ready ONNX file as model versions in a test's real MLflow registry, the way ``register`` does
after a training run (one tracked run, then one registered version per call)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
from mlflow import MlflowClient
from onnx import numpy_helper

from autoinspect.config import Settings
from autoinspect.domain import DatasetRef, ModelMetadata
from autoinspect.registry.aliases import promote
from autoinspect.registry.mlflow_registry import register_model
from autoinspect.training.tracking import MlflowTracker

DATASET = DatasetRef(name="car-damage", digest="cd" * 32)


def register_versions(
    settings: Settings,
    onnx: Path,
    metadata: ModelMetadata,
    *,
    metrics: Sequence[Mapping[str, float]] = ({"map50": 0.5},),
    reference_features_csv: Path | None = None,
    dataset: DatasetRef = DATASET,
    champion: int | None = 1,
) -> list[int]:
    """One version per entry of ``metrics`` (its offline figures); version ``champion`` is promoted."""
    with MlflowTracker(settings, dataset, run_name="train") as tracker:
        run_id = tracker.run_id
    versions = []
    with tempfile.TemporaryDirectory(prefix="registered-") as folder:
        for figures in metrics:
            evaluation = Path(folder) / "evaluation.json"
            evaluation.write_text(json.dumps(dict(figures)), encoding="utf-8")
            registered = register_model(
                settings,
                run_id=run_id,
                onnx_path=onnx,
                metadata=metadata,
                evaluation_json=evaluation,
                flat_metrics=figures,
                reference_features_csv=reference_features_csv,
                dataset=dataset,
                thresholds=metadata.score_thresholds,
            )
            versions.append(registered.version)
    if champion is not None:
        promote(settings, champion, "test champion")
    return versions


def version_files(settings: Settings, version: int) -> Path:
    """The artifact-store folder of one version's packed files."""
    source = MlflowClient(settings.tracking_uri).get_model_version(settings.tracking.model_name, str(version)).source
    model_id = source.rstrip("/").split("/")[-1]
    (folder,) = (path for path in settings.artifacts_dir.rglob(model_id) if path.is_dir())
    return folder


def flip_weight_signs(settings: Settings, version: int | None = None, count: int = 40) -> int:
    """Negate ``count`` weight tensors of one version's ``model.onnx`` in the artifact store (every version's when
    ``None``): still valid models that load and answer, with wrong scores (the tampering a load check alone does
    not see). Returns the files changed."""
    root = settings.artifacts_dir if version is None else version_files(settings, version)
    files = sorted(root.rglob("model.onnx"))
    for path in files:
        model = onnx.load(path)
        for tensor in [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT][:count]:
            tensor.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(tensor), tensor.name))
        onnx.save(model, path)
    return len(files)
