"""Shared fixtures: isolated settings per test, and the real sample beside the repository."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient
from unavailable import unavailable

from autoinspect.config import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "car-damage"
MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID")
"""Set by MLflow itself when configured; removed again after each test so no state leaks into the next."""
MLFLOW_GLOBALS = (
    "mlflow.tracking._tracking_service.utils._tracking_uri",
    "mlflow.tracking._model_registry.utils._registry_uri",
    "mlflow.tracking.fluent._active_experiment_id",
)
"""The module globals behind those variables (private names: a rename fails these fixtures loudly)."""


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's autoinspect.yaml or AUTOINSPECT_* variables, or phones home; MLflow's
    process-wide URIs and experiment (globals and environment) are restored after each test."""
    for key in list(os.environ):
        if key.startswith("AUTOINSPECT_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AUTOINSPECT_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.setenv("YDATA_PROFILING_NO_ANALYTICS", "1")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for key in MLFLOW_ENV:
        monkeypatch.delenv(key, raising=False)
    for target in MLFLOW_GLOBALS:
        monkeypatch.setattr(target, None)


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The home the ``autoinspect`` command and ``get_settings`` use (``AUTOINSPECT_HOME``), fresh per test."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTOINSPECT_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", workers=2)


NO_SHARED_DATA = "TESTS_WITHOUT_SHARED_DATA"
"""Set on runners that cannot have ``../shared`` (the data is never committed); everywhere else CI needs it."""


@pytest.fixture(scope="session")
def sample_root() -> Path:
    """The real annotated sample; missing it fails under CI and skips elsewhere."""
    if not (SAMPLE / "data.yaml").is_file():
        if os.environ.get(NO_SHARED_DATA):  # a hosted runner (GitHub) has no ../shared: skip there, with the reason
            pytest.skip(f"real sample not on this runner ({NO_SHARED_DATA} is set); the project's own CI runs these")
        unavailable(f"real sample not found at {SAMPLE}")
    return SAMPLE


@pytest.fixture
def sample_copy(sample_root: Path, tmp_path: Path) -> Path:
    """A writable copy of the real sample (about 15 MB) to plant defects in."""
    target = tmp_path / "car-damage"
    shutil.copytree(sample_root, target)
    return target


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MLflow's migrations take seconds: run them once, copy the empty database per test."""
    db = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, to prove nothing is written where a command happens to run."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def tracked_settings(settings: Settings, empty_mlflow_db: Path) -> Settings:
    """Settings whose home holds a fresh copy of the empty MLflow database."""
    settings.home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(empty_mlflow_db, settings.home / "mlflow.db")
    return settings
