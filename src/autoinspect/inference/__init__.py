"""The one prediction path: letterbox, ONNX Runtime, class-wise NMS, thresholds, verdict.

Imports only the core (and ONNX Runtime), never torch: the serving install is ``autoinspect[serve]``.
"""

from autoinspect.inference.detector import Detector
from autoinspect.inference.letterbox import LetterboxTransform, letterbox_batch
from autoinspect.inference.model_file import read_metadata
from autoinspect.inference.postprocess import (
    CANDIDATE_FLOOR,
    MAX_DETECTIONS,
    Prediction,
    StageTimes,
    apply_thresholds,
    decode_rows,
    needs_review,
    nms,
)

__all__ = [
    "CANDIDATE_FLOOR",
    "MAX_DETECTIONS",
    "Detector",
    "LetterboxTransform",
    "Prediction",
    "StageTimes",
    "apply_thresholds",
    "decode_rows",
    "letterbox_batch",
    "needs_review",
    "nms",
    "read_metadata",
]
