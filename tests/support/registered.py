"""Registering a ready ONNX file as model versions in a test's real MLflow registry, the way ``register`` does
after a training run (one tracked run, then one registered version per call)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

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
