"""Shared fixtures: isolated settings per test, and the real sample beside the repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from autoinspect.config import Settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "car-damage"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's autoinspect.yaml or AUTOINSPECT_* variables, or phones home."""
    for key in list(os.environ):
        if key.startswith("AUTOINSPECT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AUTOINSPECT_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("YDATA_PROFILING_NO_ANALYTICS", "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", workers=2)


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The real annotated sample; missing it fails under CI and skips elsewhere."""
    if not (SAMPLE / "data.yaml").is_file():
        message = f"real sample not found at {SAMPLE}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return SAMPLE


@pytest.fixture
def sample_copy(sample_root: Path, tmp_path: Path) -> Path:
    """A writable copy of the real sample (about 15 MB) to plant defects in."""
    target = tmp_path / "car-damage"
    shutil.copytree(sample_root, target)
    return target
