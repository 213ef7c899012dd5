"""Fixtures: the test detectors of :mod:`redbox`, exported once per session (about a second each)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redbox import export


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same detector exported with a dynamic batch, a fixed batch of 1 and a fixed batch of 2, and with a
    presence output."""
    folder = tmp_path_factory.mktemp("models")
    return {
        "dynamic": export(folder / "dynamic.onnx", batch=None),
        "batch1": export(folder / "batch1.onnx", batch=1),
        "batch2": export(folder / "batch2.onnx", batch=2),
        "presence": export(folder / "presence.onnx", batch=None, presence=True),
    }


@pytest.fixture
def model_path(models: dict[str, Path]) -> Path:
    return models["dynamic"]
