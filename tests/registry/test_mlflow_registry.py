"""Registering into a real MLflow SQLite store, reading versions back, downloading files, loading the pyfunc."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from PIL import Image
from registered import flip_weight_signs

from autoinspect.config import Settings
from autoinspect.domain import DatasetRef, ModelMetadata
from autoinspect.registry.aliases import CHAMPION, promote
from autoinspect.registry.mlflow_registry import (
    ModelIntegrityError,
    RegisteredModel,
    RegistryError,
    download_model_files,
    download_onnx,
    get_by_alias,
    get_version,
    list_versions,
    model_uri,
    register_model,
)
from autoinspect.registry.model_files import ARTIFACT_KEYS
from autoinspect.training.tracking import TAG_GIT_SHA

METRICS = {"map50": 0.61, "ap50/scratch": 0.58, "ap50/dent": 0.64, "image/clean_none_rate": 0.9}
THRESHOLDS = {"scratch": 0.31, "dent": 0.42}

Register = Callable[[], RegisteredModel]


@pytest.fixture
def register(
    tracked_settings: Settings,
    training_run: str,
    onnx_model: Path,
    metadata: ModelMetadata,
    evaluation_json: Path,
    reference_csv: Path,
    dataset: DatasetRef,
) -> Register:
    def _register() -> RegisteredModel:
        return register_model(
            tracked_settings,
            run_id=training_run,
            onnx_path=onnx_model,
            metadata=metadata,
            evaluation_json=evaluation_json,
            flat_metrics=METRICS,
            reference_features_csv=reference_csv,
            dataset=dataset,
            thresholds=THRESHOLDS,
        )

    return _register


def test_register_records_lineage_and_checksums_in_version_tags(
    register: Register, tracked_settings: Settings, training_run: str, dataset: DatasetRef, onnx_model: Path
) -> None:
    registered = register()

    assert registered.model_copy(update={"sha256": {}}) == RegisteredModel(
        name=tracked_settings.tracking.model_name,
        version=1,
        run_id=training_run,
        metrics=METRICS,
        dataset=dataset,
        backend="lite",
        aliases=[],
    )
    assert set(registered.sha256) == set(ARTIFACT_KEYS.values())
    assert registered.sha256["model.onnx"] == hashlib.sha256(onnx_model.read_bytes()).hexdigest()
    client = MlflowClient()
    tags = client.get_model_version(tracked_settings.tracking.model_name, "1").tags
    assert tags["run_id"] == training_run
    assert tags["dataset.digest"] == dataset.digest
    assert tags["classes"] == "scratch,dent"
    assert tags["git_sha"] == client.get_run(training_run).data.tags[TAG_GIT_SHA]
    assert float(tags["metric.ap50/dent"]) == METRICS["ap50/dent"]


def test_versions_are_listed_in_order_with_their_aliases(register: Register, tracked_settings: Settings) -> None:
    assert list_versions(tracked_settings) == []
    register()
    register()
    promote(tracked_settings, 2, reason="better")

    versions = list_versions(tracked_settings)

    assert [(v.version, v.aliases) for v in versions] == [(1, []), (2, [CHAMPION])]
    assert get_version(tracked_settings, CHAMPION).version == 2
    assert get_version(tracked_settings, "1").metrics == METRICS


def test_missing_alias_or_version_is_none_or_a_clear_error(
    register: Register, tracked_settings: Settings, tmp_path: Path
) -> None:
    assert get_by_alias(tracked_settings, CHAMPION) is None  # nothing registered yet
    register()
    assert get_by_alias(tracked_settings, CHAMPION) is None  # registered, alias never set
    with pytest.raises(RegistryError, match="no version 7"):
        get_version(tracked_settings, 7)
    with pytest.raises(RegistryError):
        download_onnx(tracked_settings, 7, tmp_path / "serving")
    assert not (tmp_path / "serving").exists()


def test_download_gives_the_registered_files(
    register: Register,
    tracked_settings: Settings,
    tmp_path: Path,
    onnx_model: Path,
    metadata: ModelMetadata,
    reference_csv: Path,
    evaluation_json: Path,
) -> None:
    register()
    promote(tracked_settings, 1, reason="first model")

    files = download_model_files(tracked_settings, CHAMPION, tmp_path / "serving")

    assert files.onnx == tmp_path / "serving" / "model.onnx"
    assert files.onnx.read_bytes() == onnx_model.read_bytes()
    assert files.read_metadata() == metadata
    assert files.read_thresholds() == THRESHOLDS
    assert files.evaluation.read_bytes() == evaluation_json.read_bytes()
    assert files.reference_features is not None
    assert files.reference_features.read_bytes() == reference_csv.read_bytes()
    assert download_onnx(tracked_settings, 1, tmp_path / "by-number").read_bytes() == onnx_model.read_bytes()


def test_files_changed_in_the_artifact_store_are_refused(
    register: Register, tracked_settings: Settings, tmp_path: Path
) -> None:
    registered = register()
    assert set(registered.sha256) >= {"model.onnx", "thresholds.json", "metadata.json"}
    assert get_version(tracked_settings, 1).sha256 == registered.sha256
    assert flip_weight_signs(tracked_settings) == 1
    with pytest.raises(ModelIntegrityError, match=r"version 1's model.onnx .*SHA-256 mismatch"):
        download_model_files(tracked_settings, 1, tmp_path / "flipped")
    for path in tracked_settings.artifacts_dir.rglob("thresholds.json"):
        path.write_text('{"scratch": 0.99, "dent": 0.99}')
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx, thresholds\.json"):
        download_model_files(tracked_settings, 1, tmp_path / "both")


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_champion_pyfunc_predicts_with_onnx_runtime(
    register: Register, tracked_settings: Settings, tmp_path: Path
) -> None:
    register()
    promote(tracked_settings, 1, reason="first model")
    photo = tmp_path / "car.png"
    photo.write_bytes(_png(64, 32))  # letterboxed into 32 x 32: scale 0.5, 8 px of padding above and below
    model = mlflow.pyfunc.load_model(model_uri(tracked_settings, CHAMPION))

    out = model.predict(pd.DataFrame({"image": [str(photo), base64.b64encode(_png(64, 32)).decode()]}))

    # the padding row is dropped, and so is the dent: its 0.4 is under the registered threshold of 0.42
    assert out["image"].tolist() == [0, 1]
    assert out["label"].tolist() == ["scratch", "scratch"]
    first = out.iloc[0]
    assert (first.x1, first.y1, first.x2, first.y2) == pytest.approx((0.25, 0.0, 0.75, 1.0))
    assert first.score == pytest.approx(0.9)


def test_nothing_lands_in_the_working_directory(
    empty_cwd: Path, register: Register, tracked_settings: Settings
) -> None:
    register()
    promote(tracked_settings, 1, reason="first model")
    mlflow.pyfunc.load_model(model_uri(tracked_settings, CHAMPION))

    assert list(empty_cwd.iterdir()) == []
    assert any(tracked_settings.artifacts_dir.rglob("model.onnx"))
