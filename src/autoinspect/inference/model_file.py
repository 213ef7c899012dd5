"""Opening a model file: the ONNX Runtime session, the model contract check and the metadata stored inside.

A detector file is self-describing: its classes, input size and thresholds travel inside it (see
:mod:`autoinspect.onnx_metadata`), so a file copied out of the registry cannot be served with the wrong class
names. Everything here goes through ONNX Runtime only: the serving install has no ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

from autoinspect.domain import ONNX_INPUT, ONNX_OUTPUT, ONNX_PRESENCE, ModelMetadata
from autoinspect.onnx_metadata import ModelFileError, parse_metadata

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
"""Explicit, because ONNX Runtime refuses to guess when a GPU provider is installed."""
_FLOAT_TENSOR = "tensor(float)"


def describe(model: Path | bytes) -> str:
    """How error messages name a model given as a path or as bytes."""
    return str(model) if isinstance(model, Path) else f"<{len(model):,} bytes of model>"


def open_session(
    model: Path | bytes,
    *,
    intra_op_threads: int | None = None,
    providers: Sequence[str] | None = None,
    optimize: bool = True,
) -> ort.InferenceSession:
    """Load a model into ONNX Runtime, turning its loader's exceptions into a :class:`ModelFileError`.

    ``optimize=False`` skips graph optimisation for callers that only want the metadata.
    """
    options = ort.SessionOptions()
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, sess_options=options, providers=list(providers or DEFAULT_PROVIDERS))
    except Exception as exc:  # ORT's pybind exceptions (Fail, InvalidProtobuf, NoSuchFile...) derive from Exception
        raise ModelFileError(f"{describe(model)} is not a loadable ONNX model: {exc}") from exc


def session_metadata(session: ort.InferenceSession, source: str) -> ModelMetadata:
    """The :class:`ModelMetadata` stored in a loaded model, or a :class:`ModelFileError` saying what is wrong."""
    return parse_metadata(session.get_modelmeta().custom_metadata_map, source)


def read_metadata(model: Path | bytes) -> ModelMetadata:
    """The metadata stored in an ONNX file or its bytes, without the ``onnx`` package (e.g. on a serving replica)."""
    return session_metadata(open_session(model, optimize=False), describe(model))


def check_signature(session: ort.InferenceSession, metadata: ModelMetadata, source: str) -> int | None:
    """Check the graph against the model contract in :mod:`autoinspect.domain`; return its fixed batch size.

    Catching a wrong name or size here gives one clear error at load time instead of a failure on every request.
    The batch size is ``None`` for a dynamic batch, else the size the graph was exported with (often 1).
    """
    inputs = session.get_inputs()
    if [node.name for node in inputs] != [ONNX_INPUT]:
        raise ModelFileError(f"{source} must have one input named '{ONNX_INPUT}', has {[n.name for n in inputs]}")
    outputs = {node.name: node for node in session.get_outputs()}
    if ONNX_OUTPUT not in outputs:
        raise ModelFileError(f"{source} must have an output named '{ONNX_OUTPUT}', has {sorted(outputs)}")
    size = metadata.input_size
    _check_node(inputs[0], [None, 3, size, size], f"{source} (input_size {size} from its metadata)")
    _check_node(outputs[ONNX_OUTPUT], [None, None, 6], source)
    batch = inputs[0].shape[0]
    return batch if isinstance(batch, int) else None


def has_presence(session: ort.InferenceSession, metadata: ModelMetadata, source: str) -> bool:
    """Whether the graph has the optional ``presence`` output (checked to be ``[N, C]`` floats)."""
    outputs = {node.name: node for node in session.get_outputs()}
    if ONNX_PRESENCE not in outputs:
        return False
    _check_node(outputs[ONNX_PRESENCE], [None, len(metadata.classes)], source)
    return True


def _check_node(node: ort.NodeArg, expected: list[int | None], source: str) -> None:
    """Raise unless the node is float32 with a shape that can hold ``expected`` (``None``: any size).

    Symbolic or unknown dimensions of the graph match anything: the output is checked again when the model runs.
    """
    shape: list[int | str | None] = list(node.shape)
    fits = len(shape) == len(expected) and all(
        not isinstance(have, int) or want is None or have == want for have, want in zip(shape, expected, strict=True)
    )
    if node.type != _FLOAT_TENSOR or not fits:
        wanted = ", ".join("*" if want is None else str(want) for want in expected)
        raise ModelFileError(
            f"{source}: '{node.name}' is {node.type} {shape}, the contract wants {_FLOAT_TENSOR} [{wanted}] (* = any)"
        )
