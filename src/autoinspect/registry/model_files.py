"""The files packed with every registered model, under fixed names, and a typed view of a downloaded copy.

Kept free of MLflow so that both sides share one spelling: the registry that writes the files and the pyfunc
model (or a serving replica) that reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from autoinspect.domain import ModelMetadata

ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
""":class:`~autoinspect.domain.ModelMetadata` as JSON, readable without opening the ONNX file."""
THRESHOLDS_FILE = "thresholds.json"
"""Operating score threshold per class, ``{"scratch": 0.31, ...}``."""
EVALUATION_FILE = "evaluation.json"
"""The evaluation report that the registration's gates and metrics came from."""
REFERENCE_FEATURES_FILE = "reference_features.csv"
"""Per-image features of the training data: the reference that drift monitoring compares traffic with."""

ARTIFACT_ONNX = "onnx"
ARTIFACT_METADATA = "metadata"
ARTIFACT_THRESHOLDS = "thresholds"
ARTIFACT_KEYS = {
    ARTIFACT_ONNX: ONNX_FILE,
    ARTIFACT_METADATA: METADATA_FILE,
    ARTIFACT_THRESHOLDS: THRESHOLDS_FILE,
    "evaluation": EVALUATION_FILE,
    "reference_features": REFERENCE_FEATURES_FILE,
}
"""Pyfunc artifact key -> file name; the pyfunc model finds its files by these keys."""

PYFUNC_INPUT_COLUMN = "image"
"""The pyfunc model's one input column: a file path or base64 image bytes per row."""
PYFUNC_OUTPUT_COLUMNS = (
    ("image", "long"),
    ("label", "string"),
    ("class_id", "long"),
    ("score", "double"),
    ("x1", "double"),
    ("y1", "double"),
    ("x2", "double"),
    ("y2", "double"),
)
"""Name and MLflow type of each output column: one row per detection; ``image`` is the input row's position,
the box is normalised to the photo."""

_THRESHOLDS = TypeAdapter(dict[str, float])


class ModelFiles(BaseModel):
    """A registered model's files on local disk, as :func:`~autoinspect.registry.mlflow_registry.download_model_files`
    leaves them: enough for serving to load the ONNX with ONNX Runtime, without MLflow's pyfunc layer."""

    onnx: Path
    metadata: Path
    thresholds: Path
    evaluation: Path
    reference_features: Path | None = None
    """Absent when the model was registered without reference features."""

    @classmethod
    def in_folder(cls, folder: Path) -> ModelFiles:
        reference = folder / REFERENCE_FEATURES_FILE
        return cls(
            onnx=folder / ONNX_FILE,
            metadata=folder / METADATA_FILE,
            thresholds=folder / THRESHOLDS_FILE,
            evaluation=folder / EVALUATION_FILE,
            reference_features=reference if reference.is_file() else None,
        )

    def read_metadata(self) -> ModelMetadata:
        return ModelMetadata.model_validate_json(self.metadata.read_text(encoding="utf-8"))

    def read_thresholds(self) -> dict[str, float]:
        return _THRESHOLDS.validate_json(self.thresholds.read_bytes())


def file_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of each packed file in ``folder``, by file name: recorded in the registry at registration."""
    names = [name for name in ARTIFACT_KEYS.values() if (folder / name).is_file()]
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def changed_files(folder: Path, expected: Mapping[str, str]) -> list[str]:
    """The files in ``folder`` whose content is not what was registered (missing ones included)."""
    actual = file_digests(folder)
    return sorted(name for name, digest in expected.items() if actual.get(name) != digest)


def write_thresholds(path: Path, thresholds: Mapping[str, float]) -> None:
    path.write_text(json.dumps(dict(thresholds), indent=2, sort_keys=True), encoding="utf-8")
