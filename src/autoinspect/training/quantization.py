"""Static int8 quantization of an exported model: the same contract, about half the CPU time.

Why static QDQ through ONNX Runtime's own tools: EfficientNet-Lite was designed for integer inference (ReLU6, no
squeeze-excitation, no swish), and ONNX Runtime fuses each QuantizeLinear / DequantizeLinear pair around a
convolution into an integer kernel when it loads the model, so the file stays a plain ONNX graph that the same
:class:`~autoinspect.inference.Detector` serves. The activations' ranges come from calibration photos, letterboxed
exactly as the Detector letterboxes (the caller passes them in), so no range is guessed.

Only the convolutions and their activations are quantized (:data:`QUANTIZED_OPS`): they are nearly all of the
time, and what follows them (box decoding in input pixels, the presence blend and its sigmoid) stays in float, so
a box corner keeps sub-pixel precision and a presence probability keeps the resolution its calibrated threshold
and review margin need. ``benchmarks/quantization.py`` times the result against its float model.

The quantized file carries its source's metadata with ``precision`` ``int8``; like any new model, its thresholds
are then calibrated on val by the evaluation step.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from autoinspect.domain import ONNX_INPUT, ModelMetadata
from autoinspect.onnx_metadata import read_file_metadata, write_metadata

logger = logging.getLogger(__name__)

QUANTIZED_OPS = ("Conv", "Clip", "Relu")
"""Operator types given int8 inputs and outputs; everything else runs in float between them."""


def quantize_model(source: Path, calibration: Sequence[npt.NDArray[np.float32]], target: Path) -> ModelMetadata:
    """Write the int8 variant of ``source`` to ``target`` and return its metadata.

    Args:
        source: a float model following the contract.
        calibration: input batches (``[n, 3, S, S]`` in [0, 1], letterboxed as the Detector does) whose
            activations set the int8 ranges.
        target: where the quantized model goes.

    Raises:
        ValueError: no calibration batch was given.
    """
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not calibration:
        raise ValueError("int8 quantization needs at least one calibration photo")
    metadata = read_file_metadata(source)

    class Batches(CalibrationDataReader):  # type: ignore[misc]  # untyped in onnxruntime
        def __init__(self) -> None:
            self._batches: Iterator[npt.NDArray[np.float32]] = iter(calibration)

        def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
            batch = next(self._batches, None)
            return None if batch is None else {ONNX_INPUT: batch}

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="autoinspect-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # shapes inferred and the graph folded, as the tools advise; ONNX's own shape inference only: the
        # symbolic one fails on the lite graph's dynamic-batch photo-classifier branch
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(target),
            Batches(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=list(QUANTIZED_OPS),
        )
    quantized = metadata.model_copy(update={"precision": "int8"})
    write_metadata(target, quantized)
    photos = sum(len(batch) for batch in calibration)
    logger.info("int8 model %s from %s, calibrated on %d photos", target, source, photos)
    return quantized
