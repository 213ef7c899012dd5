"""The MLflow pyfunc face of a registered detector, logged as a model *from code*.

MLflow copies this file into the model and executes it on load; ``set_model`` at the bottom hands it the model
object (an import-time effect that is the models-from-code contract: nothing in AutoInspect imports this
module). From code, not pickled, because an ONNX Runtime session does not pickle: ``load_context`` opens the
ONNX artifact instead. No torch here: a pyfunc load needs only ONNX Runtime.

``predict`` takes a DataFrame with an ``image`` column (a file path or base64 image bytes per row) and returns
one row per raw detection: the photo's row index, class, score and the box normalised to the photo. Raw means
before class-wise NMS and per-class thresholds; serving goes through ``inference.Detector``, and this model
should call it too once it exists, so there is one prediction path.

Example::

    model = mlflow.pyfunc.load_model("models:/autoinspect-detector@champion")
    model.predict(pd.DataFrame({"image": ["photo.jpg"]}))
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pandas as pd
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ModelMetadata
from autoinspect.errors import ImageDecodeError
from autoinspect.images import Letterbox, decode_image, letterbox
from autoinspect.registry.model_files import (
    ARTIFACT_METADATA,
    ARTIFACT_ONNX,
    PYFUNC_INPUT_COLUMN,
    PYFUNC_OUTPUT_COLUMNS,
)

OUTPUT_COLUMNS = [name for name, _ in PYFUNC_OUTPUT_COLUMNS]

Row = tuple[int, str, int, float, float, float, float, float]


class OnnxDetectorModel(PythonModel):
    """Runs the registered ONNX file with ONNX Runtime on the same letterboxed input as training."""

    def load_context(self, context: PythonModelContext) -> None:
        self._session: Any = ort.InferenceSession(context.artifacts[ARTIFACT_ONNX], providers=["CPUExecutionProvider"])
        metadata_json = Path(context.artifacts[ARTIFACT_METADATA]).read_text(encoding="utf-8")
        self._metadata = ModelMetadata.model_validate_json(metadata_json)

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
        image = decode_image(image_source(ref))
        canvas, placement = letterbox(image.rgb, self._metadata.input_size)
        batch = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
        (detections,) = self._session.run([ONNX_OUTPUT], {ONNX_INPUT: batch})
        size = (image.width, image.height)
        # rows with score 0 are padding (model contract)
        return [self._row(index, det, placement, size) for det in detections[0] if det[4] > 0]

    def _row(self, index: int, det: npt.NDArray[np.float32], placement: Letterbox, size: tuple[int, int]) -> Row:
        """Undo the letterbox: input pixels -> photo pixels -> [0, 1]."""
        width, height = size

        def to_photo(value: float, pad: int, side: int) -> float:
            return float(np.clip((value - pad) / placement.scale / side, 0.0, 1.0))

        class_id = int(det[5])
        classes = self._metadata.classes
        label = classes[class_id] if 0 <= class_id < len(classes) else str(class_id)
        return (
            index,
            label,
            class_id,
            float(det[4]),
            to_photo(det[0], placement.pad_x, width),
            to_photo(det[1], placement.pad_y, height),
            to_photo(det[2], placement.pad_x, width),
            to_photo(det[3], placement.pad_y, height),
        )


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
