"""The Detector: the one prediction path of AutoInspect (API, batch jobs and evaluation all call it).

Each call goes through three separate steps, timed on their own: *pre* (letterbox the photos into one batch),
*run* (one ONNX Runtime call per chunk) and *post* (decode, NMS, map back to the photo); thresholds, verdict and
review flag are then read off the candidates. The session is created once, in the constructor; afterwards the
Detector holds no mutable state, so one instance can serve concurrent requests (ONNX Runtime sessions are
thread-safe).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from autoinspect.domain import DECODE_MAX_SIDE, ONNX_INPUT, ONNX_OUTPUT, ONNX_PRESENCE, Detection, ModelMetadata
from autoinspect.errors import ConfigError
from autoinspect.images import DecodedImage, decode_image
from autoinspect.inference.letterbox import FloatArray, LetterboxTransform, RGBImage, letterbox_batch
from autoinspect.inference.model_file import check_signature, describe, has_presence, open_session, session_metadata
from autoinspect.inference.postprocess import (
    CANDIDATE_FLOOR,
    Prediction,
    StageTimes,
    build_prediction,
    decode_rows,
    presence_by_class,
)
from autoinspect.onnx_metadata import ModelFileError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 8
"""Photos per model run: larger batches gain little on CPU and hold more memory (8 x 3 x 640 x 640 floats = 39 MB)."""


class Detector:
    """Finds scratches and dents in RGB photos with an exported ONNX model that follows the model contract.

    Example:
        >>> detector = Detector(Path("model.onnx"), thresholds={"dent": 0.4})  # doctest: +SKIP
        >>> detector.predict_file(Path("car.jpg")).verdict.value  # doctest: +SKIP
        ['dent']
    """

    def __init__(
        self,
        model: Path | bytes,
        *,
        thresholds: Mapping[str, float] | None = None,
        intra_op_threads: int | None = None,
        providers: Sequence[str] | None = None,
        max_batch_size: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """Load the model once and check it against the contract, so a bad file fails here, not per request.

        ``thresholds`` override the model's calibrated ones per class (e.g. a stricter insurer); classes not
        named keep the model's. ``intra_op_threads=None`` lets ONNX Runtime use one thread per physical core;
        ``providers`` default to the CPU. A model exported with a fixed batch dimension is run in chunks of that
        size whatever ``max_batch_size`` says.
        """
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        source = describe(model)
        self._session = open_session(model, intra_op_threads=intra_op_threads, providers=providers)
        self._metadata = session_metadata(self._session, source)
        self._fixed_batch = check_signature(self._session, self._metadata, source)
        # a presence output answers the verdict once calibrated; before that (a fresh export) the boxes do
        self._presence = has_presence(self._session, self._metadata, source)
        self._outputs = [ONNX_OUTPUT, ONNX_PRESENCE] if self._presence else [ONNX_OUTPUT]
        calibrated = self._metadata.presence_thresholds
        if calibrated is not None and (not self._presence or set(calibrated) != set(self._metadata.classes)):
            raise ModelFileError(
                f"{source}: presence thresholds need the '{ONNX_PRESENCE}' output and exactly the classes "
                f"{self._metadata.classes}"
            )
        self._thresholds = _resolve_thresholds(self._metadata, thresholds or {})
        self._chunk_size = self._fixed_batch or max_batch_size
        self._floor = min(CANDIDATE_FLOOR, *self._thresholds.values())
        logger.info(
            "loaded %s: backend %s, classes %s, input %d px, batch %s, providers %s",
            source,
            self._metadata.backend,
            self._metadata.classes,
            self._metadata.input_size,
            self._fixed_batch or f"dynamic (chunks of {max_batch_size})",
            self._session.get_providers(),
        )

    @property
    def metadata(self) -> ModelMetadata:
        """As stored in the model file (its thresholds are the calibrated ones, before any override)."""
        return self._metadata

    @property
    def thresholds(self) -> dict[str, float]:
        """The operating threshold per class in effect: the model's, with the overrides applied."""
        return dict(self._thresholds)

    def predict(self, rgb: RGBImage) -> Prediction:
        """One H x W x 3 uint8 RGB photo."""
        return self.predict_batch([rgb])[0]

    def predict_file(self, path: Path) -> Prediction:
        """A photo file; raises :class:`~autoinspect.errors.ImageDecodeError` saying why it cannot be read."""
        return self.predict_decoded([decode_image(path, max_side=DECODE_MAX_SIDE)])[0]

    def predict_bytes(self, data: bytes) -> Prediction:
        """An encoded photo (an upload); raises :class:`~autoinspect.errors.ImageDecodeError` with the reason."""
        return self.predict_decoded([decode_image(data, max_side=DECODE_MAX_SIDE)])[0]

    def predict_decoded(self, images: Sequence[DecodedImage]) -> list[Prediction]:
        """Photos from :func:`~autoinspect.images.decode_image`, perhaps decoded below full size: boxes are
        normalised either way, and the sizes reported are the files' own."""
        predictions = self.predict_batch([image.rgb for image in images])
        return [
            prediction.model_copy(update={"width": image.source_width, "height": image.source_height})
            for prediction, image in zip(predictions, images, strict=True)
        ]

    def predict_batch(self, images: Sequence[RGBImage]) -> list[Prediction]:
        """Many photos of any sizes, one model run per chunk; results are the same as one photo at a time."""
        return [
            prediction
            for start in range(0, len(images), self._chunk_size)
            for prediction in self._predict_chunk(images[start : start + self._chunk_size])
        ]

    def _predict_chunk(self, images: Sequence[RGBImage]) -> list[Prediction]:
        started = time.perf_counter()
        batch, transforms = self._preprocess(images)
        letterboxed = time.perf_counter()
        rows, presence = self._run(batch)
        rows = rows[: len(images)]
        ran = time.perf_counter()
        candidates = [
            self._postprocess(image_rows, transform) for image_rows, transform in zip(rows, transforms, strict=True)
        ]
        decoded = time.perf_counter()
        share = 1000 / len(images)
        timing = StageTimes(
            pre_ms=(letterboxed - started) * share, run_ms=(ran - letterboxed) * share, post_ms=(decoded - ran) * share
        )
        return [
            build_prediction(
                image_candidates,
                transform,
                thresholds=self._thresholds,
                review_band=self._metadata.review_band,
                timing=timing,
                presence=self._presence_of(presence, index),
                presence_thresholds=self._metadata.presence_thresholds,
                review_margin=self._metadata.review_margin,
            )
            for index, (image_candidates, transform) in enumerate(zip(candidates, transforms, strict=True))
        ]

    def _preprocess(self, images: Sequence[RGBImage]) -> tuple[FloatArray, list[LetterboxTransform]]:
        """Letterbox into one batch, topped up with blank inputs when the model has a larger fixed batch."""
        batch, transforms = letterbox_batch(images, self._metadata.input_size)
        if self._fixed_batch and len(images) < self._fixed_batch:
            blanks = np.zeros((self._fixed_batch - len(images), *batch.shape[1:]), dtype=np.float32)
            batch = np.concatenate([batch, blanks])
        return batch, transforms

    def _run(self, batch: FloatArray) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
        """Detection rows ``[N, K, 6]`` and, for a presence model, presence ``[N, C]``."""
        outputs = self._session.run(self._outputs, {ONNX_INPUT: batch})
        rows = np.asarray(outputs[0], dtype=np.float32)
        if rows.ndim != 3 or rows.shape[0] != batch.shape[0] or rows.shape[2] != 6:
            raise ModelFileError(
                f"model output '{ONNX_OUTPUT}' has shape {rows.shape} for a batch of {batch.shape[0]}; the contract "
                f"wants [{batch.shape[0]}, K, 6]"
            )
        if not self._presence:
            return rows, None
        presence = np.asarray(outputs[1], dtype=np.float32)
        if presence.shape != (batch.shape[0], len(self._metadata.classes)) or not np.isfinite(presence).all():
            raise ModelFileError(
                f"model output '{ONNX_PRESENCE}' has shape {presence.shape} (or non-finite values) for a batch of "
                f"{batch.shape[0]}; the contract wants [{batch.shape[0]}, {len(self._metadata.classes)}] in [0, 1]"
            )
        return rows, presence

    def _presence_of(self, presence: npt.NDArray[np.float32] | None, index: int) -> dict[str, float] | None:
        if presence is None:
            return None
        return presence_by_class(self._metadata.classes, presence[index])

    def _postprocess(self, rows: npt.NDArray[np.float32], transform: LetterboxTransform) -> list[Detection]:
        return decode_rows(
            rows,
            transform,
            classes=self._metadata.classes,
            iou_threshold=self._metadata.iou_threshold,
            floor=self._floor,
        )


def _resolve_thresholds(metadata: ModelMetadata, overrides: Mapping[str, float]) -> dict[str, float]:
    """The model's thresholds with the overrides applied, checked to cover exactly the model's classes."""
    if unknown := sorted(set(overrides) - set(metadata.classes)):
        raise ConfigError(f"thresholds given for {unknown}, which are not classes of the model {metadata.classes}")
    if outside := {name: value for name, value in overrides.items() if not 0.0 <= value <= 1.0}:
        raise ConfigError(f"thresholds must be in [0, 1], got {outside}")
    resolved = {name: metadata.score_thresholds.get(name) for name in metadata.classes} | dict(overrides)
    if missing := sorted(name for name, value in resolved.items() if value is None):
        raise ModelFileError(f"the model's metadata has no score threshold for {missing}; pass them as thresholds")
    return {name: float(value) for name, value in resolved.items() if value is not None}
