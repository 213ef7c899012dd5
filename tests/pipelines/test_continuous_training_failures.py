"""A continuous-training pass that fails part-way is recorded as failed and leaves the champion serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from redbox import METADATA, export
from registered import register_versions

from autoinspect.config import Settings
from autoinspect.errors import DatasetVersionError
from autoinspect.pipelines.continuous_training import run_continuous_training
from autoinspect.pipelines.runner import LocalRunner
from autoinspect.registry.aliases import CHALLENGER, CHAMPION
from autoinspect.registry.deployment import DeploymentMode, get_deployment
from autoinspect.registry.mlflow_registry import get_by_alias
from autoinspect.store import RunStatus
from autoinspect.training.base import TrainConfig


def test_a_failed_step_is_recorded_and_the_champion_keeps_serving(tracked_settings: Settings, tmp_path: Path) -> None:
    # The champion's lineage names a dataset version this store does not hold: training cannot start.
    register_versions(tracked_settings, export(tmp_path / "redbox.onnx", batch=None), METADATA)
    with pytest.raises(DatasetVersionError):
        run_continuous_training(tracked_settings, trigger="manual", config=TrainConfig(epochs=1, imgsz=96))
    (run,) = LocalRunner(tracked_settings).history()
    assert (run.status, run.trigger) == (RunStatus.FAILED, "manual")
    steps = [(step.step, step.status) for step in run.steps]
    assert steps == [("merge_annotations", RunStatus.SUCCEEDED), ("train_challenger", RunStatus.FAILED)]
    assert "no dataset versions match" in (run.steps[-1].error or "")
    assert get_by_alias(tracked_settings, CHAMPION).version == 1  # type: ignore[union-attr]
    assert get_by_alias(tracked_settings, CHALLENGER) is None
    assert get_deployment(tracked_settings).mode is DeploymentMode.SINGLE
