"""Reads and writes :class:`~autoinspect.domain.ModelMetadata` inside an ONNX file's ``metadata_props``.

Part of the core because both sides of the contract need it: training backends write it after export, and the
Detector reads it when it loads a model. Writing needs the ``onnx`` package (training installs it); reading
goes through ONNX Runtime's session metadata, so serving needs nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from autoinspect.domain import ONNX_METADATA_KEY, ModelMetadata
from autoinspect.errors import AutoInspectError


class ModelFileError(AutoInspectError):
    """An ONNX file does not follow the model contract (metadata, input or output names)."""


def write_metadata(path: Path, metadata: ModelMetadata) -> None:
    """Store the metadata as JSON under the contract's key, replacing an earlier value."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=ONNX_METADATA_KEY, value=metadata.model_dump_json())
    onnx.save(model, str(path))


def read_file_metadata(path: Path) -> ModelMetadata:
    """The metadata of an ONNX file read with the ``onnx`` package, for tools that edit the file anyway (serving
    reads it through its ONNX Runtime session instead: ``inference.read_metadata``)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return parse_metadata({prop.key: prop.value for prop in model.metadata_props}, str(path))


def parse_metadata(custom: Mapping[str, str], source: str) -> ModelMetadata:
    """Metadata from a ``key -> value`` map (ONNX Runtime's ``custom_metadata_map``)."""
    raw = custom.get(ONNX_METADATA_KEY)
    if raw is None:
        raise ModelFileError(f"{source} has no '{ONNX_METADATA_KEY}' metadata: it was not exported by AutoInspect")
    try:
        return ModelMetadata.model_validate_json(raw)
    except ValidationError as exc:
        raise ModelFileError(f"{source}: invalid '{ONNX_METADATA_KEY}' metadata: {exc}") from None
