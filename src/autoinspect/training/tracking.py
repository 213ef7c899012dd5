"""MLflow experiment tracking, wired into training as callbacks: the one module that talks to MLflow runs.

Backends report events (:class:`~autoinspect.training.base.TrainingCallbacks`) and never import MLflow; this
module turns those events into an MLflow run: the flattened config as params, per-epoch metrics with
``step=epoch``, the exported ONNX, weights, plots and history as artifacts, and the lineage a reviewer needs to
reproduce the run (dataset name and digest, git sha, library versions, backend) as tags.

Every call goes through an explicit :class:`~mlflow.MlflowClient` and run id rather than MLflow's "active run"
stack, so trials of a hyper-parameter search can run side by side (each nested under a parent run) without
stepping on one another.

Example::

    with MlflowTracker(settings, dataset) as tracker:
        backend.train(layout, config, out_dir, callbacks=tracker)
    log_evaluation(settings, tracker.run_id, evaluation_json, flat_metrics, figures)
"""

from __future__ import annotations

import json
import logging
import platform
import re
import subprocess
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_PARENT_RUN_ID
from pydantic import BaseModel

from autoinspect.config import Settings
from autoinspect.data.layout import DatasetLayout
from autoinspect.domain import DatasetRef
from autoinspect.errors import ConfigError
from autoinspect.mlflow_setup import TAG_GIT_SHA, UNKNOWN, configure_mlflow
from autoinspect.training.base import TrainConfig, TrainResult

logger = logging.getLogger(__name__)

"""Tag value for lineage that could not be read (no git checkout, package not installed)."""

TAG_DATASET_NAME = "dataset.name"
TAG_DATASET_DIGEST = "dataset.digest"
TAG_BACKEND = "backend"
TAG_CLASSES = "classes"
"""MLflow's own key, so its UI shows the commit next to the run."""
TAG_PYTHON = "env.python"
TAG_PLATFORM = "env.platform"
TAG_TORCH = "env.torch"
TAG_AUTOINSPECT = "env.autoinspect"
TAG_ERROR = "error"
TAG_DEMO = "demo"
TAG_PRECISION = "precision"
TAG_QUANTIZED_FROM = "quantized_from"
"""Run tag of an int8 run: the float run it was made from."""
"""Set on runs and model versions trained on the generated synthetic sample."""
"""Set on a FAILED run: the exception that ended it, so the run list says why without opening logs."""

ARTIFACT_ONNX_DIR = "onnx"
ARTIFACT_WEIGHTS_DIR = "weights"
ARTIFACT_PLOTS_DIR = "plots"
ARTIFACT_HISTORY = "history.json"
ARTIFACT_METADATA = "model_metadata.json"
ARTIFACT_EVALUATION_DIR = "evaluation"
EVALUATION_FILE = "evaluation.json"

METRIC_BEST_SCORE = "best_score"
"""The selection metric of the exported checkpoint, logged at ``step=best_epoch``."""
EVAL_PREFIX = "test/"
"""Evaluation metrics are logged under a prefix so they never mix with the per-epoch val curves of the same name."""

DATASET_CONTEXT_TRAIN = "train"
_MLFLOW_DATASET_DIGEST_MAX = 36
"""MLflow's limit on a dataset input's digest; the full sha256 stays in the run tags."""
_INVALID_KEY_CHARS = re.compile(r"[^/\w.\- ]")
_ERROR_TAG_MAX = 4000


def git_sha(repo_dir: Path | None = None) -> str:
    """The commit of the code that runs, or ``"unknown"``: a missing git or checkout must never fail a run.

    Asked from the package's own folder by default, not the working directory, so a run started from anywhere
    records the commit of the AutoInspect code it executed.
    """
    cwd = repo_dir or Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    return done.stdout.strip() or UNKNOWN


def environment_tags() -> dict[str, str]:
    """Versions that change results between machines; torch is read from package metadata, never imported."""
    return {
        TAG_GIT_SHA: git_sha(),
        TAG_PYTHON: platform.python_version(),
        TAG_PLATFORM: platform.platform(),
        TAG_TORCH: _package_version("torch"),
        TAG_AUTOINSPECT: _package_version("autoinspect"),
    }


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return UNKNOWN


def flatten_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config as MLflow params, ``lite.variant`` style, so runs compare field by field in the UI.

    Example:
        >>> flatten_params({"lr": 0.1, "lite": {"variant": "efficientnet_lite0"}})
        {'lr': '0.1', 'lite.variant': 'efficientnet_lite0'}
    """
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def metric_key(name: str) -> str:
    """A metric name MLflow accepts: engines report keys such as ``metrics/mAP50(B)`` that it would reject.

    Example:
        >>> metric_key("metrics/mAP50(B)")
        'metrics/mAP50_B_'
    """
    return _INVALID_KEY_CHARS.sub("_", name)


def _metrics(values: Mapping[str, float], step: int, prefix: str = "") -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(metric_key(f"{prefix}{key}"), float(value), now, step) for key, value in values.items()]


class MlflowTracker:
    """One MLflow run per training, fed by the backend's callbacks; use it as a context manager.

    Leaving the ``with`` block normally marks the run FINISHED; an exception marks it FAILED (KILLED for
    Ctrl-C) with the error as a tag and propagates, so a crashed training never looks like a finished one.
    For a hyper-parameter search, open one tracker for the search and pass its ``run_id`` as
    ``parent_run_id`` to each trial's tracker: MLflow then shows the trials nested under the search.
    """

    def __init__(
        self,
        settings: Settings,
        dataset: DatasetRef,
        *,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        demo: bool = False,
    ) -> None:
        self._settings = settings
        self._dataset = dataset
        self._run_name = run_name
        self._parent_run_id = parent_run_id
        self._demo = demo
        self._client: MlflowClient | None = None
        self._run_id: str | None = None

    @property
    def run_id(self) -> str:
        return self._active()[1]

    def __enter__(self) -> Self:
        experiment_id = configure_mlflow(self._settings)
        client = MlflowClient()
        tags = {
            TAG_DATASET_NAME: self._dataset.name,
            TAG_DATASET_DIGEST: self._dataset.digest,
            **environment_tags(),
        }
        if self._parent_run_id:
            tags[MLFLOW_PARENT_RUN_ID] = self._parent_run_id
        if self._demo:
            tags[TAG_DEMO] = "true"
        run = client.create_run(experiment_id, tags=tags, run_name=self._run_name)
        self._client, self._run_id = client, run.info.run_id
        logger.info("MLflow run %s started in experiment %s", self._run_id, experiment_id)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        client, run_id = self._active()
        if exc is None:
            status = RunStatus.FINISHED
        else:
            status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
            client.set_tag(run_id, TAG_ERROR, f"{type(exc).__name__}: {exc}"[:_ERROR_TAG_MAX])
        client.set_terminated(run_id, RunStatus.to_string(status))
        logger.info("MLflow run %s ended %s", run_id, RunStatus.to_string(status))
        self._client = self._run_id = None

    def on_train_start(self, config: TrainConfig, layout: DatasetLayout) -> None:
        """Params, backend and class tags, and the dataset as a run input (shown in MLflow's Datasets panel)."""
        client, run_id = self._active()
        params = [Param(key, value) for key, value in flatten_params(config.model_dump(mode="json")).items()]
        tags = [RunTag(TAG_BACKEND, config.backend), RunTag(TAG_CLASSES, ",".join(layout.names))]
        client.log_batch(run_id, params=params, tags=tags)
        client.log_inputs(run_id, datasets=[self._dataset_input(layout)])

    def _dataset_input(self, layout: DatasetLayout) -> DatasetInput:
        dataset = Dataset(
            name=self._dataset.name,
            digest=self._dataset.digest[:_MLFLOW_DATASET_DIGEST_MAX],
            source_type="local",
            source=json.dumps({"uri": layout.root.resolve().as_uri()}),
        )
        return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, DATASET_CONTEXT_TRAIN)])

    def annotate(self, *, tags: Mapping[str, str], params: Mapping[str, str]) -> None:
        """Tags and params of a run that is not a training (e.g. the int8 variant of a trained model)."""
        client, run_id = self._active()
        client.log_batch(
            run_id,
            params=[Param(key, value) for key, value in params.items()],
            tags=[RunTag(key, value) for key, value in tags.items()],
        )

    def log_file(self, path: Path, folder: str = ARTIFACT_EVALUATION_DIR) -> None:
        """One more file among the run's artifacts (by default beside its evaluation report)."""
        client, run_id = self._active()
        client.log_artifact(run_id, str(path), folder)

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, float]) -> None:
        client, run_id = self._active()
        client.log_batch(run_id, metrics=_metrics(metrics, step=epoch))

    def on_train_end(self, result: TrainResult) -> None:
        """Everything needed to reuse or audit the model without rerunning the training."""
        client, run_id = self._active()
        client.log_artifact(run_id, str(result.onnx_path), ARTIFACT_ONNX_DIR)
        client.log_artifact(run_id, str(result.weights_path), ARTIFACT_WEIGHTS_DIR)
        for plot in result.plots:
            client.log_artifact(run_id, str(plot), ARTIFACT_PLOTS_DIR)
        client.log_dict(run_id, {"history": result.history}, ARTIFACT_HISTORY)
        client.log_text(run_id, result.metadata.model_dump_json(indent=2), ARTIFACT_METADATA)
        client.log_batch(run_id, metrics=_metrics({METRIC_BEST_SCORE: result.best_score}, step=result.best_epoch))

    def _active(self) -> tuple[MlflowClient, str]:
        if self._client is None or self._run_id is None:
            raise RuntimeError("MlflowTracker is used outside its `with` block: no run is open")
        return self._client, self._run_id


def log_evaluation(
    settings: Settings,
    run_id: str,
    evaluation_json: Path,
    flat_metrics: Mapping[str, float],
    figures: list[Path],
    *,
    prefix: str = EVAL_PREFIX,
    model_file: Path | None = None,
) -> None:
    """Attach an evaluation to the training run it measured (the run may already be finished).

    Metrics go under ``prefix`` (``test/map50``), the report and figures under ``evaluation/``. ``model_file``
    replaces the run's ONNX artifact: evaluation writes the val-calibrated thresholds into it.
    """
    configure_mlflow(settings)
    client = MlflowClient()
    client.log_batch(run_id, metrics=_metrics(flat_metrics, step=0, prefix=prefix))
    client.log_artifact(run_id, str(evaluation_json), ARTIFACT_EVALUATION_DIR)
    for figure in figures:
        client.log_artifact(run_id, str(figure), f"{ARTIFACT_EVALUATION_DIR}/figures")
    if model_file is not None:
        client.log_artifact(run_id, str(model_file), ARTIFACT_ONNX_DIR)


class RunFiles(BaseModel):
    """A finished run's model and evaluation, fetched from the tracking store (any machine can register it)."""

    onnx_path: Path
    evaluation_json: Path
    dataset: DatasetRef
    demo: bool = False
    """Trained on the generated synthetic sample: a demonstration, not a model of real damage."""
    params: dict[str, str] = {}
    """The run's params (the flattened training config)."""


def download_run_files(settings: Settings, run_id: str, dst: Path) -> RunFiles:
    """Fetch the ONNX model and the evaluation report of a run, with the dataset version it was trained on."""
    configure_mlflow(settings)
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"no training run {run_id!r} in {settings.tracking_uri}") from None
    dst.mkdir(parents=True, exist_ok=True)
    onnx_dir = Path(client.download_artifacts(run_id, ARTIFACT_ONNX_DIR, str(dst)))
    models = sorted(onnx_dir.glob("*.onnx"))
    evaluation_dir = Path(client.download_artifacts(run_id, ARTIFACT_EVALUATION_DIR, str(dst)))
    evaluation = evaluation_dir / EVALUATION_FILE
    if not models or not evaluation.is_file():
        raise ConfigError(f"run {run_id} has no evaluated model (did its training finish?)")
    tags = run.data.tags
    dataset = DatasetRef(name=tags.get(TAG_DATASET_NAME, UNKNOWN), digest=tags.get(TAG_DATASET_DIGEST, UNKNOWN))
    return RunFiles(
        onnx_path=models[0],
        evaluation_json=evaluation,
        dataset=dataset,
        demo=tags.get(TAG_DEMO) == "true",
        params=dict(run.data.params),
    )
