"""Every DAG file parses as the scheduler parses it, without side effects, into the structure the loop needs.

Running the monitoring and continuous-training DAGs end to end belongs with their pipelines' own tests; here
their wiring is checked: task ids, dependencies, short-circuits, the canary sensor and the asset schedule.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from dag_steps import CONTINUOUS_TRAINING_STEPS

from autoinspect.config import get_settings
from autoinspect.orchestration import DAGS_FOLDER

DAG_IDS = {
    "autoinspect_training",
    "autoinspect_batch_inference",
    "autoinspect_monitoring",
    "autoinspect_continuous_training",
    "autoinspect_annotations",
}


def _edges(dag: Any) -> set[tuple[str, str]]:
    return {(task.task_id, down) for task in dag.tasks for down in task.downstream_task_ids}


def test_every_dag_file_imports_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == DAG_IDS
    for dag in dagbag.dags.values():
        assert dag.default_args["owner"] == "autoinspect" and dag.default_args["retries"] == 2
        assert dag.catchup is False and "autoinspect" in dag.tags


def test_every_dag_serialises_as_the_scheduler_stores_it(dagbag: Any) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, dag in dagbag.dags.items():
        assert DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag)).dag_id == dag_id


def test_parsing_reads_no_settings_and_writes_nothing(airflow_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    home = airflow_home.parent / "untouched-home"
    monkeypatch.setenv("AUTOINSPECT_HOME", str(home))
    get_settings.cache_clear()
    parsed = DagBag(dag_folder=DAGS_FOLDER)
    assert parsed.import_errors == {} and set(parsed.dag_ids) == DAG_IDS
    assert get_settings.cache_info().currsize == 0
    assert not home.exists()


def test_training_dag(dagbag: Any) -> None:
    dag = dagbag.dags["autoinspect_training"]
    assert dag.timetable.can_be_scheduled is False  # manual only
    assert set(dag.params) == {"folder", "name", "profile", "train_config"}
    assert _edges(dag) == {("prepare_dataset", "train_model"), ("train_model", "register_run")}


def test_batch_inference_dag_maps_one_task_per_shard(dagbag: Any) -> None:
    dag = dagbag.dags["autoinspect_batch_inference"]
    assert set(dag.params) == {"folder", "shard_size", "model"}
    assert dag.params["shard_size"] == 500 and dag.params["model"] == "champion"
    assert _edges(dag) == {("plan", "predict_shard"), ("pin_model", "predict_shard"), ("predict_shard", "merge")}
    assert dag.task_dict["predict_shard"].is_mapped and not dag.task_dict["merge"].is_mapped


def test_monitoring_dag_runs_hourly_one_run_at_a_time(dagbag: Any) -> None:
    from airflow.sdk import CronTriggerTimetable

    dag = dagbag.dags["autoinspect_monitoring"]
    assert isinstance(dag.timetable, CronTriggerTimetable) and dag.timetable.expression == "0 * * * *"
    assert dag.max_active_runs == 1
    assert dag.task_ids == ["run_monitoring"]


def test_monitoring_schedule_comes_from_airflow_configuration(airflow_home: Path) -> None:
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAGS_FOLDER / 'monitoring.py')!r})\n"
        "print(bag.dags['autoinspect_monitoring'].timetable.expression)"
    )
    environment = {**os.environ, "AIRFLOW__AUTOINSPECT__MONITORING_SCHEDULE": "*/15 * * * *"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "*/15 * * * *"


def test_continuous_training_dag(dagbag: Any) -> None:
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk import AssetOrTimeSchedule, BaseSensorOperator, CronTriggerTimetable

    from autoinspect.orchestration.assets import ANNOTATIONS

    dag = dagbag.dags["autoinspect_continuous_training"]
    steps = CONTINUOUS_TRAINING_STEPS
    assert sorted(dag.task_ids) == sorted(steps)
    # the fired triggers also reach register_challenger, which records the pass with them; the comparison reads
    # the run and the dataset too; the canary and its decision need the version
    extra = {
        ("check_triggers", "register_challenger"),
        ("merge_annotations", "compare_with_champion"),
        ("train_challenger", "compare_with_champion"),
        ("register_challenger", "start_canary"),
        ("register_challenger", "decide"),
    }
    assert _edges(dag) == set(itertools.pairwise(steps)) | extra
    short_circuits = {task.task_id for task in dag.tasks if isinstance(task, ShortCircuitOperator)}
    assert short_circuits == {"check_triggers", "merge_annotations", "register_challenger"}

    decide = dag.task_dict["decide"]
    assert isinstance(decide, BaseSensorOperator) and decide.mode == "reschedule"
    assert decide.poke_interval == 30 * 60 and decide.timeout == 72 * 3600

    schedule = dag.timetable
    assert isinstance(schedule, AssetOrTimeSchedule) and schedule.asset_condition == ANNOTATIONS
    assert isinstance(schedule.timetable, CronTriggerTimetable) and schedule.timetable.expression == "0 0 * * *"
    assert dag.max_active_runs == 1


def test_annotations_dag_produces_the_asset(dagbag: Any) -> None:
    from autoinspect.orchestration.assets import ANNOTATIONS

    dag = dagbag.dags["autoinspect_annotations"]
    assert dag.task_ids == ["publish_annotations"]
    assert dag.task_dict["publish_annotations"].outlets == [ANNOTATIONS]
