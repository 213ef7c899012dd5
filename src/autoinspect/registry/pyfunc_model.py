"""The MLflow pyfunc face of a registered detector, logged as a model *from code*.

MLflow copies this file into the model and executes it on load; ``set_model`` at the bottom hands it the model
object (an import-time effect that is the models-from-code contract: nothing in AutoInspect imports this
module). From code, not pickled, because an ONNX Runtime session does not pickle: ``load_context`` opens the
ONNX artifact instead. No torch here: a pyfunc load needs only ONNX Runtime.

``predict`` takes a DataFrame with an ``image`` column (a file path or base64 image bytes per row) and returns
one row per detection: the photo's row index, class, score and the box normalised to the photo. It runs
:class:`~autoinspect.inference.Detector` with the registered thresholds, the same prediction path as the API,
the CLI and evaluation, so what MLflow serves is what was evaluated.

Example::

    model = mlflow.pyfunc.load_model("models:/autoinspect-detector@champion")
    model.predict(pd.DataFrame({"image": ["photo.jpg"]}))
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from autoinspect.errors import ImageDecodeError
from autoinspect.inference import Detector
from autoinspect.registry.model_files import (
    ARTIFACT_ONNX,
    ARTIFACT_THRESHOLDS,
    PYFUNC_INPUT_COLUMN,
    PYFUNC_OUTPUT_COLUMNS,
)

OUTPUT_COLUMNS = [name for name, _ in PYFUNC_OUTPUT_COLUMNS]

Row = tuple[int, str, int, float, float, float, float, float]


class OnnxDetectorModel(PythonModel):
    """The registered ONNX file behind the Detector, at the registered per-class thresholds."""

    def load_context(self, context: PythonModelContext) -> None:
        thresholds = json.loads(Path(context.artifacts[ARTIFACT_THRESHOLDS]).read_text(encoding="utf-8"))
        self._detector = Detector(Path(context.artifacts[ARTIFACT_ONNX]), thresholds=thresholds)

    def predict(
        self,
        context: PythonModelContext | None,
        model_input: pd.DataFrame,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        rows = [
            row for index, ref in enumerate(model_input[PYFUNC_INPUT_COLUMN]) for row in self._detect(index, str(ref))
        ]
        return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)

    def _detect(self, index: int, ref: str) -> list[Row]:
        source = image_source(ref)
        prediction = (
            self._detector.predict_file(source) if isinstance(source, Path) else self._detector.predict_bytes(source)
        )
        classes = self._detector.metadata.classes
        return [
            (index, d.label, classes.index(d.label), d.confidence, d.box.x1, d.box.y1, d.box.x2, d.box.y2)
            for d in prediction.detections
        ]


def image_source(ref: str) -> Path | bytes:
    """A path when a file of that name exists, else the base64-decoded bytes; neither is a clear error."""
    try:
        if Path(ref).is_file():
            return Path(ref)
    except (OSError, ValueError):  # a long base64 string is no valid path on this system
        pass
    try:
        return base64.b64decode(ref, validate=True)
    except binascii.Error:
        raise ImageDecodeError(f"'{ref[:40]}' is neither an existing file nor base64 image bytes") from None


mlflow.models.set_model(OnnxDetectorModel())
