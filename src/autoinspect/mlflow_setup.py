"""The one place AutoInspect configures MLflow: tracking and registry URI, and the experiment.

Part of the core because training (runs), the registry (model versions) and serving (following aliases) all
need the same configuration, and the package import rules let each of them reach only the core.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT
from sqlalchemy.engine import make_url

from autoinspect.config import Settings
from autoinspect.private_files import private_dir, private_file

TAG_GIT_SHA = MLFLOW_GIT_COMMIT
"""Runs record the commit under MLflow's own key, so its UI links it; model versions copy it."""
UNKNOWN = "unknown"
"""Tag value when a fact (git sha, a package version) cannot be read: recording it must never fail a run."""
_REMOTE_SCHEMES = ("http://", "https://", "databricks")


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow (tracking and registry) at the configured store and return the experiment id.

    The only place AutoInspect configures MLflow. A SQLite store gets an experiment whose artifact location is
    ``settings.artifacts_dir``, given explicitly: MLflow's default is ``./mlruns`` relative to the working
    directory, which scatters artifacts wherever a command happens to run. A tracking server keeps its own
    artifact root (proxied or S3), so none is given there. Safe to call again: the experiment is created once.
    """
    # Artifact downloads are small here; MLflow's per-download progress bars would interleave with the JSON
    # lines that `autoinspect predict` prints.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = settings.tracking_uri
    if uri.startswith("sqlite:"):
        private_dir(settings.home)
        database = make_url(uri).database
        if database and database != ":memory:":
            private_file(Path(database))
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment_id = _ensure_experiment(MlflowClient(), settings)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def _ensure_experiment(client: MlflowClient, settings: Settings) -> str:
    name = settings.tracking.experiment
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    remote = settings.tracking_uri.startswith(_REMOTE_SCHEMES)
    location = None if remote else settings.artifacts_dir.as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:
        # Another process (a parallel search trial) created it between our read and write.
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id
