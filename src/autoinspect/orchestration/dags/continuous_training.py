"""``autoinspect_continuous_training``: new reviewed annotations -> challenger -> canary -> promoted or rolled back.

Scheduled on the ``autoinspect-annotations`` asset (an export of reviews into the inbox wakes it at once) or on
the clock (``[autoinspect] continuous_training_schedule``, daily by default), whichever comes first: the clock is
what notices drift and performance alerts and the ``schedule_hours`` trigger. Either way the first task asks the
configured triggers (``Settings.continuous_training``) and the run stops there, skipped, when none fired.

Each later step skips the rest when it has nothing to hand on: no new annotations, or a challenger rejected by the
gates (the champion keeps serving). The last task is a sensor in reschedule mode: it re-checks the canary every
``canary_poke_minutes`` without holding a worker slot, until reviewers' evidence promotes or rolls back the
challenger, and fails after ``canary_timeout_hours``. One run at a time: a new trigger waits for the canary.
"""

from __future__ import annotations

import logging

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, PokeReturnValue, dag, task

from autoinspect.orchestration.assets import ANNOTATIONS
from autoinspect.orchestration.defaults import (
    CANARY_POKE_SECONDS,
    CANARY_TIMEOUT_SECONDS,
    CONTINUOUS_TRAINING_SCHEDULE,
    DAG_ARGS,
    TIMEZONE,
)

logger = logging.getLogger(__name__)
WAITING = "waiting"


@dag(
    dag_id="autoinspect_continuous_training",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(CONTINUOUS_TRAINING_SCHEDULE, timezone=TIMEZONE), assets=ANNOTATIONS
    ),
    max_active_runs=1,
    doc_md=__doc__,
    **DAG_ARGS,
)
def autoinspect_continuous_training() -> None:
    @task.short_circuit
    def check_triggers() -> list[str]:
        """The triggers that fired (new reviews, drift or performance alert, schedule); none skips the rest."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import check_triggers

        decision = check_triggers(get_settings())
        logger.info("triggers: %s", "; ".join(decision.reasons) or "none fired")
        return decision.reasons

    @task.short_circuit
    def merge_annotations(reasons: list[str]) -> str | None:
        """The dataset version to train on: new annotations merged in, or the current one when an alert or the
        schedule fired; ``None`` (only reviews fired, and nothing new) skips the rest."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import TriggerDecision, training_data

        return training_data(get_settings(), TriggerDecision(fire=True, reasons=reasons))

    @task
    def train_challenger(dataset: str) -> str:
        """Train on the new version, warm-started from the champion; the MLflow run id."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import train_challenger

        return train_challenger(get_settings(), dataset)

    @task.short_circuit
    def register_challenger(mlflow_run: str, reasons: list[str]) -> int | None:
        """Register behind the gates; the challenger's version, or ``None`` (rejected) which skips the rest.
        Either way the pass is recorded, so the triggers count new reviews and alerts from now on."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import record_training, register_challenger

        settings = get_settings()
        version = register_challenger(settings, mlflow_run)
        outcome = f"v{version} registered as challenger" if version else f"run {mlflow_run} rejected by the gates"
        record_training(settings, "; ".join(reasons), outcome)
        return version

    @task
    def compare_with_champion(mlflow_run: str, version: int, dataset: str) -> str:
        """The challenger against the champion photo by photo (kept for the Models page and logged to its run)."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import compare_challenger

        return compare_challenger(get_settings(), mlflow_run, version, dataset)

    @task
    def start_canary(version: int) -> None:
        """Route the configured share of vehicles to the challenger."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import start_canary

        start_canary(get_settings(), version)

    @task.sensor(poke_interval=CANARY_POKE_SECONDS, timeout=CANARY_TIMEOUT_SECONDS, mode="reschedule")
    def decide(version: int) -> PokeReturnValue:
        """Promote or roll back once enough canary answers are reviewed; re-checked while it says ``waiting``."""
        from autoinspect.config import get_settings
        from autoinspect.pipelines.continuous_training import decide

        outcome = decide(get_settings(), version)
        logger.info("canary v%s: %s", version, outcome)
        return PokeReturnValue(is_done=outcome != WAITING, xcom_value=outcome)

    reasons = check_triggers()
    dataset = merge_annotations(reasons)
    mlflow_run = train_challenger(dataset)
    version = register_challenger(mlflow_run, reasons)
    compare_with_champion(mlflow_run, version, dataset) >> start_canary(version) >> decide(version)


autoinspect_continuous_training()
