"""Model versions in the MLflow registry: register a trained detector, read versions back, fetch their files.

A version is a pyfunc model logged from code into the training run, packing the ONNX file with what serving
and monitoring need beside it (see :mod:`autoinspect.registry.model_files`). Its lineage lives in the version's
tags (run, dataset name and digest, backend, git sha, every evaluation metric as ``metric.<key>``), so the
registry page alone answers "what is this model and how good was it" and the gates read the champion's
metrics without opening its run. The SHA-256 of each packed file is a tag too (``sha256.<file>``), and every
download is checked against it: the tags live in the registry's database, apart from the artifact store, so a
file changed in the store (corrupted, or swapped for another valid model) is refused instead of served.

Example::

    registered = register_model(settings, run_id=run_id, onnx_path=onnx, metadata=meta, ...)
    files = download_model_files(settings, CHAMPION, Path("/srv/model"))   # ONNX Runtime, no pyfunc needed
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import tempfile
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.types import ColSpec, Schema, TensorSpec
from PIL import Image
from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.domain import LETTERBOX_FILL, DatasetRef, ModelMetadata
from autoinspect.errors import AutoInspectError
from autoinspect.mlflow_setup import TAG_GIT_SHA as RUN_TAG_GIT_SHA
from autoinspect.mlflow_setup import UNKNOWN, configure_mlflow
from autoinspect.registry.model_files import (
    ARTIFACT_KEYS,
    EVALUATION_FILE,
    METADATA_FILE,
    ONNX_FILE,
    PYFUNC_INPUT_COLUMN,
    PYFUNC_OUTPUT_COLUMNS,
    REFERENCE_FEATURES_FILE,
    THRESHOLDS_FILE,
    ModelFiles,
    changed_files,
    file_digests,
    write_thresholds,
)

logger = logging.getLogger(__name__)

LOGGED_MODEL_NAME = "detector"
"""Name of the pyfunc model inside its run."""
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")

TAG_RUN_ID = "run_id"
TAG_DATASET_NAME = "dataset.name"
TAG_DATASET_DIGEST = "dataset.digest"
TAG_BACKEND = "backend"
TAG_CLASSES = "classes"
TAG_INPUT_SIZE = "input_size"
TAG_PRECISION = "precision"
TAG_GIT_SHA = "git_sha"
TAG_DEMO = "demo"
METRIC_TAG_PREFIX = "metric."
DIGEST_TAG_PREFIX = "sha256."

_SERVING_PACKAGES = ("onnxruntime", "numpy", "pandas", "pillow", "pydantic", "mlflow")
"""What the pyfunc model imports; pinned to this environment's versions so MLflow need not guess them (slow)."""
_NOT_FOUND = {ErrorCode.Name(RESOURCE_DOES_NOT_EXIST), ErrorCode.Name(INVALID_PARAMETER_VALUE)}
"""What MLflow raises for an unknown model, version or alias (the SQL store says INVALID_PARAMETER_VALUE)."""

VersionRef = int | str
"""A version number (``3`` or ``"3"``) or an alias (``"champion"``)."""


class RegistryError(AutoInspectError):
    """A version or alias does not exist, or an alias move would break the promotion history."""


class ModelIntegrityError(RegistryError):
    """A version's files in the artifact store are not the files that were registered."""


class RegisteredModel(BaseModel):
    """One model version as AutoInspect sees it: lineage and metrics read from its tags."""

    name: str
    version: int
    run_id: str | None
    metrics: dict[str, float]
    """The flat evaluation metrics it was registered with (``map50``, ``ap50/scratch``...)."""
    dataset: DatasetRef | None
    backend: str | None
    aliases: list[str]
    sha256: dict[str, str] = {}
    """SHA-256 of each packed file, by file name; empty for versions registered before checksums were kept."""
    demo: bool = False
    """Trained on the generated synthetic sample: it shows the system working, it does not find real damage."""
    precision: str = "float32"
    """``int8`` for a quantized variant (``autoinspect quantize``); versions registered before say nothing: float."""


def registry_client(settings: Settings) -> MlflowClient:
    """A client on the configured registry (configures MLflow first, idempotently)."""
    configure_mlflow(settings)
    return MlflowClient()


def register_model(
    settings: Settings,
    *,
    run_id: str,
    onnx_path: Path,
    metadata: ModelMetadata,
    evaluation_json: Path,
    flat_metrics: Mapping[str, float],
    reference_features_csv: Path | None,
    dataset: DatasetRef,
    thresholds: Mapping[str, float],
    demo: bool = False,
) -> RegisteredModel:
    """Log the detector as a pyfunc model into its training run and register it as a new version.

    The version gets no alias: making it challenger or champion is a separate, recorded decision.
    """
    client = registry_client(settings)
    with tempfile.TemporaryDirectory(prefix="autoinspect-register-") as tmp:
        artifacts = _stage_files(Path(tmp), onnx_path, metadata, evaluation_json, reference_features_csv, thresholds)
        digests = file_digests(Path(tmp))
        with mlflow.start_run(run_id=run_id):
            logged = mlflow.pyfunc.log_model(
                name=LOGGED_MODEL_NAME,
                python_model=str(PYFUNC_CODE),
                artifacts=artifacts,
                signature=_signature(),
                pip_requirements=_pip_requirements(),
                input_example=_input_example(metadata.input_size),
            )
    tags = _lineage_tags(client, run_id, metadata, dataset, flat_metrics)
    tags.update({f"{DIGEST_TAG_PREFIX}{name}": digest for name, digest in digests.items()})
    if demo:
        tags[TAG_DEMO] = "true"
    version = mlflow.register_model(logged.model_uri, settings.tracking.model_name, tags=tags)
    logger.info("registered %s version %s from run %s", version.name, version.version, run_id)
    return to_registered(version, aliases=[])


def _stage_files(
    folder: Path,
    onnx_path: Path,
    metadata: ModelMetadata,
    evaluation_json: Path,
    reference_features_csv: Path | None,
    thresholds: Mapping[str, float],
) -> dict[str, str]:
    """Copy and write the files under their fixed names: MLflow keeps each artifact's base name."""
    shutil.copyfile(onnx_path, folder / ONNX_FILE)
    shutil.copyfile(evaluation_json, folder / EVALUATION_FILE)
    (folder / METADATA_FILE).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
    write_thresholds(folder / THRESHOLDS_FILE, thresholds)
    if reference_features_csv is not None:
        shutil.copyfile(reference_features_csv, folder / REFERENCE_FEATURES_FILE)
    return {key: str(folder / name) for key, name in ARTIFACT_KEYS.items() if (folder / name).is_file()}


def _signature() -> ModelSignature:
    """Declared, not inferred from the example's output: a grey example photo may give no detection rows."""
    inputs: list[ColSpec | TensorSpec] = [ColSpec("string", PYFUNC_INPUT_COLUMN)]
    outputs: list[ColSpec | TensorSpec] = [ColSpec(kind, name) for name, kind in PYFUNC_OUTPUT_COLUMNS]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def _input_example(size: int) -> pd.DataFrame:
    """A grey photo as base64: documents the input format, and MLflow runs the model on it at registration."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (LETTERBOX_FILL,) * 3).save(buffer, format="PNG")
    return pd.DataFrame({PYFUNC_INPUT_COLUMN: [base64.b64encode(buffer.getvalue()).decode("ascii")]})


def _pip_requirements() -> list[str]:
    return [f"{name}=={importlib_metadata.version(name)}" for name in _SERVING_PACKAGES]


def _lineage_tags(
    client: MlflowClient,
    run_id: str,
    metadata: ModelMetadata,
    dataset: DatasetRef,
    flat_metrics: Mapping[str, float],
) -> dict[str, str]:
    tags = {
        TAG_RUN_ID: run_id,
        TAG_DATASET_NAME: dataset.name,
        TAG_DATASET_DIGEST: dataset.digest,
        TAG_BACKEND: metadata.backend,
        TAG_CLASSES: ",".join(metadata.classes),
        TAG_INPUT_SIZE: str(metadata.input_size),
        TAG_PRECISION: metadata.precision,
        TAG_GIT_SHA: client.get_run(run_id).data.tags.get(RUN_TAG_GIT_SHA, UNKNOWN),
    }
    tags.update({f"{METRIC_TAG_PREFIX}{key}": repr(float(value)) for key, value in flat_metrics.items()})
    return tags


def to_registered(version: ModelVersion, aliases: list[str]) -> RegisteredModel:
    """Our view of an MLflow model version; ``aliases`` is passed in because MLflow's searches leave it empty."""
    tags = version.tags
    name, digest = tags.get(TAG_DATASET_NAME), tags.get(TAG_DATASET_DIGEST)
    metrics = {
        key.removeprefix(METRIC_TAG_PREFIX): float(value)
        for key, value in tags.items()
        if key.startswith(METRIC_TAG_PREFIX)
    }
    return RegisteredModel(
        name=version.name,
        version=int(version.version),
        run_id=version.run_id or tags.get(TAG_RUN_ID),
        metrics=metrics,
        dataset=DatasetRef(name=name, digest=digest) if name and digest else None,
        backend=tags.get(TAG_BACKEND),
        aliases=sorted(aliases),
        sha256={
            key.removeprefix(DIGEST_TAG_PREFIX): value
            for key, value in tags.items()
            if key.startswith(DIGEST_TAG_PREFIX)
        },
        demo=tags.get(TAG_DEMO) == "true",
        precision=tags.get(TAG_PRECISION, "float32"),
    )


def is_not_found(exc: MlflowException) -> bool:
    return exc.error_code in _NOT_FOUND


def get_by_alias(settings: Settings, alias: str) -> RegisteredModel | None:
    """The version an alias points to, or ``None`` when the alias (or the registered model) does not exist."""
    client = registry_client(settings)
    try:
        version = client.get_model_version_by_alias(settings.tracking.model_name, alias)
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise
    return to_registered(version, aliases=list(version.aliases))


def get_version(settings: Settings, ref: VersionRef) -> RegisteredModel:
    """A version by number or alias; :class:`RegistryError` when there is none."""
    if not _is_version_number(ref):
        found = get_by_alias(settings, str(ref))
        if found is None:
            raise RegistryError(f"no model version has the alias '{ref}' in '{settings.tracking.model_name}'")
        return found
    client = registry_client(settings)
    try:
        version = client.get_model_version(settings.tracking.model_name, str(ref))
    except MlflowException as exc:
        if is_not_found(exc):
            raise RegistryError(f"'{settings.tracking.model_name}' has no version {ref}") from None
        raise
    return to_registered(version, aliases=list(version.aliases))


def list_versions(settings: Settings) -> list[RegisteredModel]:
    """Every version, oldest first, with its aliases; empty when nothing was registered yet."""
    client = registry_client(settings)
    name = settings.tracking.model_name
    try:
        alias_map = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if is_not_found(exc):
            return []
        raise
    by_version: dict[str, list[str]] = {}
    for alias, version in alias_map.items():
        by_version.setdefault(str(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    registered = [to_registered(v, aliases=by_version.get(str(v.version), [])) for v in versions]
    return sorted(registered, key=lambda model: model.version)


def model_uri(settings: Settings, ref: VersionRef) -> str:
    """``models:/<name>/<version>`` or ``models:/<name>@<alias>``, as ``mlflow.pyfunc.load_model`` takes them."""
    name = settings.tracking.model_name
    return f"models:/{name}/{ref}" if _is_version_number(ref) else f"models:/{name}@{ref}"


def _is_version_number(ref: VersionRef) -> bool:
    return isinstance(ref, int) or ref.isdigit()


def download_model_files(settings: Settings, ref: VersionRef, dst: Path) -> ModelFiles:
    """Copy a version's packed files into ``dst`` (created; same-named files replaced) and check them.

    Serving loads the ONNX file from there with ONNX Runtime, with thresholds and metadata beside it, so a
    replica needs neither the pyfunc layer nor the run's artifacts. An alias is resolved first and that version
    downloaded, so a concurrent promotion cannot mix two versions' files.

    Raises:
        ModelIntegrityError: a file in ``dst`` differs from the one registered (checked after the copy, so what
            is checked is what will be loaded).
    """
    version = get_version(settings, ref)
    with tempfile.TemporaryDirectory(prefix="autoinspect-download-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"{model_uri(settings, version.version)}/artifacts", dst_path=tmp
            )
        except MlflowException as exc:
            if is_not_found(exc):
                raise RegistryError(f"no model version '{ref}' in '{settings.tracking.model_name}'") from None
            raise
        dst.mkdir(parents=True, exist_ok=True)
        for file in Path(local).iterdir():
            shutil.copyfile(file, dst / file.name)
        if not (Path(local) / REFERENCE_FEATURES_FILE).is_file():  # optional: drop one left by another version
            (dst / REFERENCE_FEATURES_FILE).unlink(missing_ok=True)
    _verify(version, dst)
    return ModelFiles.in_folder(dst)


def _verify(version: RegisteredModel, folder: Path) -> None:
    if not version.sha256:
        logger.warning("version %d was registered without checksums: its files are not verified", version.version)
        return
    changed = changed_files(folder, version.sha256)
    if changed:
        raise ModelIntegrityError(
            f"version {version.version}'s {', '.join(changed)} in the artifact store differ from the registered "
            "files (SHA-256 mismatch): refusing to load it; restore the artifacts or register the model again"
        )


def download_onnx(settings: Settings, ref: VersionRef, dst: Path) -> Path:
    """The version's ONNX file, downloaded into ``dst`` with its metadata and thresholds beside it."""
    return download_model_files(settings, ref, dst).onnx
