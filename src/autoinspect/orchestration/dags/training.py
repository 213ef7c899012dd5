"""``autoinspect_training``: a dataset folder -> validated, versioned dataset -> trained model -> registered version.

Triggered by hand (or the REST API) with the folder to train on; the same three calls as ``autoinspect up``,
``autoinspect train`` and ``autoinspect register``. A dataset that fails validation stops the run before training,
without retries (it would fail again); the registration's gates decide the alias, so a worse model is recorded but
never served.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from autoinspect.orchestration.defaults import DAG_ARGS

logger = logging.getLogger(__name__)


@dag(
    dag_id="autoinspect_training",
    schedule=None,
    params={
        "folder": Param(type="string", minLength=1, description="Dataset folder or export on the workers' disk."),
        "name": Param("", type="string", description="Dataset name; empty means the folder name."),
        "profile": Param(True, type="boolean", description="Write the EDA profile of the new version."),
        "train_config": Param({}, type="object", description='TrainConfig fields, e.g. {"epochs": 50}.'),
    },
    doc_md=__doc__,
    **DAG_ARGS,
)
def autoinspect_training() -> None:
    @task
    def prepare_dataset() -> str:
        """Import, validate and version the folder; the new version's ``name@digest``."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.dataset import prepare_dataset

        params = get_current_context()["params"]
        prepared = prepare_dataset(
            get_settings(), Path(params["folder"]), name=params["name"] or None, profile=params["profile"]
        )
        if not prepared.validation.passed:
            raise AirflowFailException(f"dataset validation failed: see {prepared.validation.report_html}")
        version = prepared.version
        logger.info("dataset %s: %s images", version.ref.short, version.split_counts())
        return f"{version.name}@{version.digest}"

    @task
    def train_model(dataset: str) -> str:
        """Train on the version and evaluate on its test split; the MLflow run id."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.training import train_model
        from autoinspect.training.base import TrainConfig

        config = TrainConfig.model_validate(get_current_context()["params"]["train_config"])
        outcome = train_model(get_settings(), dataset, config)
        logger.info("run %s: test mAP50 %s", outcome.run_id, outcome.evaluation.test.detection.map50)
        return outcome.run_id

    @task
    def register_run(mlflow_run: str) -> dict[str, Any]:
        """Register the run's model behind the gates; its version and the alias the gates gave it."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.registration import register_run

        registration = register_run(get_settings(), mlflow_run)
        return {
            "version": registration.model.version,
            "alias": registration.alias,
            "failed_gates": [check.message for check in registration.decision.failures],
        }

    register_run(train_model(prepare_dataset()))


autoinspect_training()
