"""Airflow for the tests: a throw-away ``AIRFLOW_HOME`` with a migrated SQLite database, set before Airflow loads.

Airflow reads its configuration and opens its metadata database the first time it is imported, so no test module
imports it at module level: :func:`airflow_home` sets the environment, runs ``airflow db migrate`` once per
session (a subprocess, a few seconds) and only then are the DAG files parsed and Airflow imported, by
:func:`dagbag`. Tasks run by ``dag.test()`` run in this process and read the AutoInspect settings from the
environment, like a worker: tests point ``AUTOINSPECT_HOME`` at their registry with :func:`worker_settings`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redbox import METADATA, export
from registered import register_versions

from autoinspect.config import Settings, get_settings
from autoinspect.orchestration import DAGS_FOLDER


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Airflow's environment for the whole session, with its database migrated; restored at the end."""
    if "airflow" in sys.modules:
        pytest.fail("airflow was imported before its test environment was set: import it inside tests only")
    home = tmp_path_factory.mktemp("airflow-home")
    environment = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # an asset event queues its consumers at once
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        migrated = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
        )
        assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
        yield home


@pytest.fixture(scope="session")
def dagbag(airflow_home: Path) -> Any:
    """Every DAG file of ``DAGS_FOLDER`` parsed as the scheduler parses it (Airflow imported from here on)."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_FOLDER)


@pytest.fixture(scope="session")
def redbox_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tmp_path_factory.mktemp("redbox") / "redbox.onnx", batch=None)


@pytest.fixture
def champion(tracked_settings: Settings, redbox_onnx: Path, tmp_path: Path) -> Settings:
    """A real MLflow registry whose version 1, the red-box model, is the champion."""
    register_versions(tracked_settings, redbox_onnx, METADATA)
    return tracked_settings


@pytest.fixture
def worker_settings(champion: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """What a task's ``get_settings()`` returns: the champion's home, through ``AUTOINSPECT_HOME``."""
    monkeypatch.setenv("AUTOINSPECT_HOME", str(champion.home))
    monkeypatch.setenv("AUTOINSPECT_WORKERS", str(champion.workers))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
