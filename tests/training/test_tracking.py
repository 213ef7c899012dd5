"""The MLflow tracker against a real SQLite store: what a training run leaves behind, read back with MlflowClient.

A stand-in backend drives the callbacks exactly as a real one does (start, one call per epoch, end), so these
tests need neither torch nor a trained model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import Run, RunStatus
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import DatasetRef, ModelMetadata
from autoinspect.training.base import TrainConfig, TrainingCallbacks, TrainResult
from autoinspect.training.tracking import (
    TAG_BACKEND,
    TAG_DATASET_DIGEST,
    TAG_DATASET_NAME,
    TAG_ERROR,
    TAG_GIT_SHA,
    TAG_PYTHON,
    UNKNOWN,
    MlflowTracker,
    git_sha,
    log_evaluation,
)

DATASET = DatasetRef(name="car-damage", digest="cd" * 32)
EPOCHS = 3


@pytest.fixture
def tracked_settings(empty_cwd: Path, tracked_settings: Settings) -> Settings:
    """The shared fresh store, used from an empty working directory."""
    return tracked_settings


@pytest.fixture
def layout(tmp_path: Path) -> DatasetLayout:
    return DatasetLayout.create(tmp_path / "dataset", ["scratch", "dent"])


@pytest.fixture
def result(tmp_path: Path) -> TrainResult:
    """What a backend leaves in its output folder (file contents do not matter to the tracker)."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("best.onnx", "best.pt", "curves.png"):
        (out / name).write_bytes(name.encode())
    metadata = ModelMetadata(classes=["scratch", "dent"], input_size=64, backend="lite", score_thresholds={})
    return TrainResult(
        onnx_path=out / "best.onnx",
        weights_path=out / "best.pt",
        metadata=metadata,
        best_epoch=1,
        best_score=0.5,
        history=[{"epoch": float(e), "loss": 1.0 / (e + 1)} for e in range(EPOCHS)],
        plots=[out / "curves.png"],
    )


def fake_training(callbacks: TrainingCallbacks, layout: DatasetLayout, result: TrainResult) -> None:
    """The callback sequence of a backend, with an engine-style metric key MLflow would reject as is."""
    callbacks.on_train_start(TrainConfig(epochs=EPOCHS), layout)
    for epoch in range(EPOCHS):
        callbacks.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "map50": 0.2 * epoch, "metrics/mAP50(B)": 0.1})
    callbacks.on_train_end(result)


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    """Every artifact file of a run, recursively."""
    found: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def _run(run_id: str) -> Run:
    return MlflowClient().get_run(run_id)


def test_training_run_records_params_lineage_curves_and_artifacts(
    tracked_settings: Settings, layout: DatasetLayout, result: TrainResult, empty_cwd: Path
) -> None:
    with MlflowTracker(tracked_settings, DATASET, run_name="lite-baseline") as tracker:
        fake_training(tracker, layout, result)
        run_id = tracker.run_id

    run = _run(run_id)
    assert run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert run.info.run_name == "lite-baseline"
    assert run.data.params["epochs"] == "3"
    assert run.data.params["lite.variant"] == "efficientnet_lite0"
    tags = run.data.tags
    assert (tags[TAG_DATASET_NAME], tags[TAG_DATASET_DIGEST], tags[TAG_BACKEND]) == ("car-damage", "cd" * 32, "lite")
    assert tags[TAG_GIT_SHA] and tags[TAG_PYTHON]
    assert run.inputs is not None
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["car-damage"]

    client = MlflowClient()
    history = client.get_metric_history(run_id, "map50")
    assert [(m.step, m.value) for m in history] == [(0, 0.0), (1, 0.2), (2, 0.4)]
    assert len(client.get_metric_history(run_id, "metrics/mAP50_B_")) == EPOCHS
    assert run.data.metrics["best_score"] == 0.5
    assert _artifacts(client, run_id) == {
        "onnx/best.onnx",
        "weights/best.pt",
        "plots/curves.png",
        "history.json",
        "model_metadata.json",
    }
    assert list(empty_cwd.iterdir()) == []  # no ./mlruns: artifacts go to the configured folder
    assert run.info.artifact_uri == f"{tracked_settings.artifacts_dir.as_uri()}/{run_id}/artifacts"


def test_a_failing_training_marks_the_run_failed(tracked_settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="out of memory"), MlflowTracker(tracked_settings, DATASET) as tracker:
        run_id = tracker.run_id
        raise RuntimeError("CUDA out of memory")

    run = _run(run_id)
    assert run.info.status == RunStatus.to_string(RunStatus.FAILED)
    assert run.data.tags[TAG_ERROR] == "RuntimeError: CUDA out of memory"


def test_search_trials_nest_under_their_parent_run(tracked_settings: Settings) -> None:
    with MlflowTracker(tracked_settings, DATASET, run_name="search") as search:
        with MlflowTracker(tracked_settings, DATASET, parent_run_id=search.run_id) as trial:
            trial_id = trial.run_id
        search_id = search.run_id

    assert _run(trial_id).data.tags[MLFLOW_PARENT_RUN_ID] == search_id


def test_evaluation_is_attached_to_the_finished_run(tracked_settings: Settings, tmp_path: Path) -> None:
    with MlflowTracker(tracked_settings, DATASET) as tracker:
        run_id = tracker.run_id
    report = tmp_path / "evaluation.json"
    report.write_text("{}", encoding="utf-8")
    figure = tmp_path / "pr_curve.png"
    figure.write_bytes(b"png")

    log_evaluation(tracked_settings, run_id, report, {"map50": 0.61, "ap50/dent": 0.7}, [figure])

    run = _run(run_id)
    assert run.data.metrics == {"test/map50": 0.61, "test/ap50/dent": 0.7}
    assert _artifacts(MlflowClient(), run_id) == {"evaluation/evaluation.json", "evaluation/figures/pr_curve.png"}


def test_callbacks_outside_the_with_block_are_an_error(tracked_settings: Settings) -> None:
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        MlflowTracker(tracked_settings, DATASET).on_epoch_end(0, {"loss": 1.0})


def test_git_sha_is_unknown_without_a_checkout_or_without_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert git_sha(tmp_path) == UNKNOWN
    monkeypatch.setenv("PATH", str(tmp_path))
    assert git_sha() == UNKNOWN
