"""DAG runs with ``dag.test()``: the real scheduler loop and task runner, in this process, on a SQLite metadata DB.

The batch inference DAG runs on real photos from the sample (plus one red photo and one corrupt file, so every
kind of line is there) against a champion in a real MLflow registry: one mapped task per shard, one merged line
per photo, the same lines as the local runner. The annotations DAG emits the asset event that queues a
continuous-training run.

The monitoring, continuous-training and training DAGs run here too, on real registries: monitoring over a logged
window, continuous training when nothing fires (everything after the first task skipped), and the training DAG
from a synthetic folder to the first champion followed by the full continuous-training path on it (two reviews,
a challenger trained, registered and put on canary). Models are tiny (1 epoch at 96 px): what is tested is the
wiring through Airflow, not the detector. The training DAG also runs with every task on a home of its own, as
tasks on separate workers do, sharing only the registry, the store and object storage (moto's S3 on loopback).
No task is retried here, so a failure fails at once.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from dag_steps import CONTINUOUS_TRAINING_STEPS
from PIL import Image
from redbox import METADATA, photo
from registered import register_versions
from s3 import s3_server

from autoinspect.config import GateSettings, Settings, StorageSettings, get_settings
from autoinspect.data.profiling import features_table
from autoinspect.data.synthetic import generate_dataset
from autoinspect.domain import NONE_VERDICT, Annotation, Box, Detection, Split
from autoinspect.images import decode_image
from autoinspect.monitoring.features import live_features
from autoinspect.pipelines.batch_inference import run_batch, run_folder
from autoinspect.pipelines.continuous_training import PIPELINE, check_triggers
from autoinspect.pipelines.continuous_training import decide as decide_canary
from autoinspect.registry.aliases import CHALLENGER, CHAMPION
from autoinspect.registry.deployment import DeploymentMode, get_deployment
from autoinspect.registry.mlflow_registry import get_by_alias, list_versions
from autoinspect.store import (
    ImageStore,
    PipelineRuns,
    PredictionEntry,
    PredictionLog,
    ReviewLog,
    Route,
    RunStatus,
    create_schema,
    make_engine,
)
from autoinspect.ui.reports import latest_validation

REAL_PHOTOS = 5
SHARD_SIZE = 3
TINY = {"epochs": 1, "imgsz": 96, "batch": 8, "workers": 0}
"""TrainConfig fields of the tiny models: what is tested is the DAG, not the detector."""
WINDOW = 30
"""Answers per monitoring window: the default ``min_window_size``, so every comparison is made."""
DENT = Box(x1=0.3, y1=0.3, x2=0.6, y2=0.6)
STEPS = CONTINUOUS_TRAINING_STEPS


@pytest.fixture
def intake(sample_root: Path, tmp_path: Path) -> Path:
    """Five real photos of the test split, a photo with pure red in it and a corrupt JPEG."""
    folder = tmp_path / "intake"
    folder.mkdir()
    for source in sorted((sample_root / "images" / "test").iterdir())[:REAL_PHOTOS]:
        shutil.copyfile(source, folder / source.name)
    Image.fromarray(photo(320, 240, (100, 80, 180, 140))).save(folder / "zz_red.png")
    (folder / "zz_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    return folder


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_batch_inference_dag(dagbag: Any, worker_settings: Settings, intake: Path, tmp_path: Path) -> None:
    dag = dagbag.dags["autoinspect_batch_inference"]

    run = dag.test(run_conf={"folder": str(intake), "shard_size": SHARD_SIZE})

    instances = run.get_task_instances()
    assert {(ti.task_id, ti.state) for ti in instances} == {
        ("plan", "success"),
        ("pin_model", "success"),
        ("predict_shard", "success"),
        ("merge", "success"),
    }
    photos = REAL_PHOTOS + 2
    shards = -(-photos // SHARD_SIZE)
    assert sorted(ti.map_index for ti in instances if ti.task_id == "predict_shard") == list(range(shards))

    folder = Path(run_folder(worker_settings, run.run_id))
    lines = _lines(folder / "predictions.jsonl")
    assert [Path(line["file"]).name for line in lines] == sorted(path.name for path in intake.iterdir())
    assert len(list((folder / "parts").iterdir())) == shards
    *real, corrupt, red = lines
    assert all(line["verdict"] is not None and line["error"] is None for line in real)
    assert corrupt["verdict"] is None and corrupt["error"]
    assert red["verdict"] == ["dent", "scratch"] and red["needs_review"] is True

    local = run_batch(worker_settings, intake, shard_size=SHARD_SIZE, out=tmp_path / "local.jsonl", model="champion")
    assert _lines(Path(local.output)) == lines  # the DAG and the local runner give the same answers


def _separate_workers(shared: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every ``get_settings()`` a task makes returns ``shared`` on a fresh home, as a task on another worker would
    see; the homes used, in order."""
    homes: list[Path] = []

    def new_worker() -> Settings:
        homes.append(tmp_path / f"worker-{len(homes)}")
        return shared.model_copy(update={"home": homes[-1]})

    monkeypatch.setattr("autoinspect.config.get_settings", new_worker)
    return homes


def _shared_stores(settings: Settings, storage: StorageSettings) -> Settings:
    """``settings`` with its registry and store named explicitly (so other homes reach them) and ``storage``."""
    return settings.model_copy(
        update={
            "tracking": settings.tracking.model_copy(update={"uri": settings.tracking_uri}),
            "store": settings.store.model_copy(update={"url": settings.store_url}),
            "storage": storage,
        }
    )


def test_batch_inference_dag_on_separate_workers_with_photos_and_results_in_object_storage(
    dagbag: Any, champion: Settings, intake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with s3_server(monkeypatch, "intake", "results") as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint)
        for path in sorted(intake.iterdir()):
            client.upload_file(str(path), "intake", f"day-1/{path.name}")
        storage = StorageSettings(results_url="s3://results/batch", s3_endpoint_url=endpoint)
        homes = _separate_workers(_shared_stores(champion, storage), tmp_path, monkeypatch)

        run = dagbag.dags["autoinspect_batch_inference"].test(
            run_conf={"folder": "s3://intake/day-1", "shard_size": SHARD_SIZE}
        )

        assert {ti.state for ti in run.get_task_instances()} == {"success"}
        shards = -(-(REAL_PHOTOS + 2) // SHARD_SIZE)
        assert len(homes) == len(set(homes)) == 3 + shards  # plan, pin_model, each shard, merge
        assert not any((home / "batch").exists() for home in homes)
        folder = re.sub(r"[^A-Za-z0-9._-]+", "_", run.run_id)
        merged = client.get_object(Bucket="results", Key=f"batch/{folder}/predictions.jsonl")["Body"].read()
        lines = [json.loads(line) for line in merged.decode().splitlines()]
        assert [line["file"] for line in lines] == [f"s3://intake/day-1/{p.name}" for p in sorted(intake.iterdir())]
        *real, corrupt, red = lines
        assert all(line["verdict"] is not None for line in real) and corrupt["error"]
        assert red["verdict"] == ["dent", "scratch"]


def test_annotations_dag_queues_continuous_training(dagbag: Any, worker_settings: Settings) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    batch = worker_settings.annotations_inbox / "batch-1" / "images" / "train"
    batch.mkdir(parents=True)
    for index in range(2):
        Image.fromarray(photo(64, 64, seed=index)).save(batch / f"{index}.jpg")

    run = dagbag.dags["autoinspect_annotations"].test()

    assert {(ti.task_id, ti.state) for ti in run.get_task_instances()} == {("publish_annotations", "success")}
    with create_session() as session:
        asset = session.scalars(select(AssetModel).where(AssetModel.name == "autoinspect-annotations")).one()
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)).all()
        queued = session.scalars(select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id))
        assert [event.extra["photos"] for event in events] == [2]
        assert list(queued) == ["autoinspect_continuous_training"]


def test_a_wrong_folder_fails_the_run_at_once_without_retries(
    dagbag: Any, worker_settings: Settings, tmp_path: Path
) -> None:
    run = dagbag.dags["autoinspect_batch_inference"].test(run_conf={"folder": str(tmp_path / "missing")})

    states = {ti.task_id: (ti.state, ti.try_number) for ti in run.get_task_instances()}
    assert run.state == "failed"
    assert states["plan"] == ("failed", 1)  # an AutoInspectError is not retried: the input would be as wrong
    assert states["merge"][0] == "upstream_failed"


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Point a worker's ``get_settings()`` at a test's home, with extra ``AUTOINSPECT_*`` variables."""

    def point(settings: Settings, **variables: str) -> Settings:
        monkeypatch.setenv("AUTOINSPECT_HOME", str(settings.home))
        monkeypatch.setenv("AUTOINSPECT_WORKERS", str(settings.workers))
        for key, value in variables.items():
            monkeypatch.setenv(f"AUTOINSPECT_{key}", value)
        get_settings.cache_clear()
        return get_settings()

    yield point
    get_settings.cache_clear()


def _without_retries(dag: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A failing task fails the run at once: ``dag.test()`` would otherwise wait out the retry delays (minutes)."""
    for task in dag.tasks:
        monkeypatch.setattr(task, "retries", 0)
    return dag


def _states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _return_value(run: Any, task_id: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=run.run_id, key="return_value", dag_ids=run.dag_id, task_ids=task_id)
        return XComModel.deserialize_value(session.scalars(query).one())


def _reschedules(run: Any, task_id: str) -> int:
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session

    with create_session() as session:
        return len(session.scalars(TaskReschedule.stmt_for_task_instance(run.get_task_instance(task_id))).all())


# --- autoinspect_monitoring ----------------------------------------------------------------------------------


@pytest.fixture
def monitored(tracked_settings: Settings, redbox_onnx: Path, tmp_path: Path) -> Settings:
    """A registry whose champion carries reference features of generated training photos (as registration
    computes them), so the monitoring run makes every comparison."""
    train = generate_dataset(tmp_path / "reference", 60, seed=0, size=(96, 96), splits={Split.TRAIN: 1.0})
    reference_csv = tmp_path / "reference_features.csv"
    features_table(train, workers=2, split=Split.TRAIN).to_csv(reference_csv, index=False)
    register_versions(tracked_settings, redbox_onnx, METADATA, reference_features_csv=reference_csv)
    return tracked_settings


def _log_window(settings: Settings, name: str, seed: int, end: datetime, folder: Path) -> None:
    """``WINDOW`` answers on generated photos (decoded as the service decodes uploads), a minute apart up to
    ``end``; every second one is "None", every fifth flagged for review."""
    layout = generate_dataset(folder / name, WINDOW, seed=seed, size=(96, 96), splits=None)
    entries = [
        PredictionEntry(
            request_id=f"{name}-{i}",
            created_at=end - timedelta(minutes=WINDOW - 1 - i),
            model_version="1",
            route=Route.CHAMPION,
            verdict=NONE_VERDICT if i % 2 == 0 else ["dent"],
            detections=[] if i % 2 == 0 else [Detection(label="dent", box=DENT, confidence=0.9)],
            needs_review=i % 5 == 0,
            max_score=0.1 if i % 2 == 0 else 0.9,
            latency_ms=20.0 + i,
            features=live_features(decode_image(item.image)),
        )
        for i, item in enumerate(layout.items())
    ]
    engine = make_engine(settings.store_url)
    create_schema(engine)
    PredictionLog(engine).write(entries)
    engine.dispose()


def test_monitoring_dag(
    dagbag: Any, monitored: Settings, worker_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    settings = worker_env(monitored, MONITORING__WINDOW_HOURS="1")
    _log_window(settings, "previous", 1, now - timedelta(hours=1, minutes=1), tmp_path / "photos")
    _log_window(settings, "current", 2, now - timedelta(minutes=1), tmp_path / "photos")

    run = _without_retries(dagbag.dags["autoinspect_monitoring"], monkeypatch).test()

    assert run.state == "success"
    assert _states(run) == {"run_monitoring": "success"}
    (folder,) = settings.monitoring_dir.iterdir()
    summary_json = folder / "summary.json"
    returned = _return_value(run, "run_monitoring")
    assert returned["summary_json"] == str(summary_json) and returned["model_version"] == "1"
    summary = json.loads(summary_json.read_text(encoding="utf-8"))
    assert summary["model_version"] == "1" and summary["kpis"]["answered"] == WINDOW
    assert summary["input_drift"]["result"] is not None, summary["input_drift"]["skipped"]
    assert summary["output_drift"]["result"] is not None, summary["output_drift"]["skipped"]
    assert (folder / "input_drift.html").is_file() and (folder / "output_drift.html").is_file()


# --- autoinspect_continuous_training -------------------------------------------------------------------------


def test_continuous_training_dag_skips_everything_when_no_trigger_fires(
    dagbag: Any, worker_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _without_retries(dagbag.dags["autoinspect_continuous_training"], monkeypatch).test()

    assert run.state == "success"
    assert _states(run) == {"check_triggers": "success"} | {step: "skipped" for step in STEPS[1:]}
    assert [model.version for model in list_versions(worker_settings)] == [1]
    assert get_by_alias(worker_settings, CHALLENGER) is None
    assert get_deployment(worker_settings).mode is DeploymentMode.SINGLE
    engine = make_engine(worker_settings.store_url)
    create_schema(engine)
    assert PipelineRuns(engine).last(PIPELINE, RunStatus.SUCCEEDED) is None  # a skipped pass is not a training
    engine.dispose()


def _review_photos(settings: Settings, folder: Path, count: int) -> None:
    """``count`` answers of the champion on stored photos, each corrected by a reviewer to one dent."""
    layout = generate_dataset(folder, count, seed=5, size=(160, 120), splits=None)
    images = ImageStore(settings.images_dir)
    entries = [
        PredictionEntry(
            request_id=f"review-{i}",
            model_version="1",
            route=Route.CHAMPION,
            verdict=NONE_VERDICT,
            needs_review=True,
            max_score=0.3,
            latency_ms=20.0,
            image_sha256=images.put(item.image.read_bytes()),
        )
        for i, item in enumerate(layout.items())
    ]
    engine = make_engine(settings.store_url)
    create_schema(engine)
    PredictionLog(engine).write(entries)
    reviews = ReviewLog(engine)
    for entry in entries:
        reviews.submit(entry.request_id, reviewer="ines", labels=[Annotation(label="dent", box=DENT)], prediction=entry)
    engine.dispose()


def test_training_dag_runs_each_task_on_a_home_of_its_own(
    dagbag: Any, tracked_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers on separate hosts share only the registry, the store and object storage: here every task gets a
    fresh home of its own (checkouts, run folders, caches, reports) and the run still goes from a folder to a
    registered champion, through dataset versions in S3 (moto's server on loopback)."""
    with s3_server(monkeypatch, "data") as endpoint:
        storage = StorageSettings(
            images_url="s3://data/images",
            datasets_url="s3://data/datasets",
            reports_url="s3://data/reports",
            s3_endpoint_url=endpoint,
        )
        shared = _shared_stores(tracked_settings, storage).model_copy(
            update={"gates": GateSettings(min_map50=0, min_damaged_caught=0, min_clean_none_rate=0)}
        )
        homes = _separate_workers(shared, tmp_path, monkeypatch)
        generate_dataset(tmp_path / "cars", 40, seed=1, size=(160, 120))
        conf = {"folder": str(tmp_path / "cars"), "name": "cars", "profile": False, "train_config": TINY}

        run = _without_retries(dagbag.dags["autoinspect_training"], monkeypatch).test(run_conf=conf)

        assert _states(run) == {"prepare_dataset": "success", "train_model": "success", "register_run": "success"}
        assert _return_value(run, "register_run") == {"version": 1, "alias": CHAMPION, "failed_gates": []}
        assert len(homes) == len(set(homes)) == 3  # one home per task
        assert not any((home / "datasets").exists() for home in homes)  # the version lives in the bucket only
        downloaded = (homes[1] / "cache" / "datasets" / "objects").rglob("*")
        assert sum(path.is_file() for path in downloaded) >= 40  # the trainer fetched the photos it trained on
        (model,) = list_versions(shared)
        assert model.dataset is not None and model.dataset.name == "cars"
        ui_home = tmp_path / "ui"  # the UI runs on a home of its own too: the validation report reaches it
        shown = latest_validation(shared.model_copy(update={"home": ui_home}))
        assert shown is not None and shown[0].parent == ui_home / "reports" / "validation"
        assert shown[1]["passed"] is True


def test_training_dag_then_continuous_training_dag_puts_a_challenger_on_canary(
    dagbag: Any, tracked_settings: Settings, worker_env: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The training DAG turns a synthetic folder into the first champion; then new reviews -> merged ->
    challenger trained (warm-started from it), registered, on canary, and the canary sensor keeps waiting.

    One test for both DAGs because continuous training needs a champion trained on a dataset version, and the
    training DAG is what makes one: training it a second time only for this test would double the cost.

    ``decide`` is a sensor in reschedule mode: each "waiting" poke reschedules it ``canary_poke_minutes`` (30)
    later, and ``dag.test()`` keeps looping (sleeping a second per turn) until the reschedule date, then pokes
    again, up to ``canary_timeout_hours`` (72): the run would block. So the test keeps the mode but shortens the
    interval to 1 s and the timeout to 2 s, with ``soft_fail``: ``dag.test()`` goes through real reschedules,
    each poke asks the real ``decide`` (no canary reviews: "waiting"), and the timeout skips the task instead of
    failing it. Everything before it runs unchanged.
    """
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    settings = worker_env(
        tracked_settings,
        CONTINUOUS_TRAINING__TRAIN_CONFIG=str(config),
        CONTINUOUS_TRAINING__NEW_REVIEWS="2",
        CONTINUOUS_TRAINING__MAX_AP50_DROP="1.0",  # tiny models: the gates must not decide this test
        CONTINUOUS_TRAINING__MAX_CLEAN_NONE_RATE_DROP="1.0",
        CONTINUOUS_TRAINING__MAX_DAMAGED_CAUGHT_DROP="1.0",
        GATES__MIN_MAP50="0",
        GATES__MIN_DAMAGED_CAUGHT="0",
        GATES__MIN_CLEAN_NONE_RATE="0",
    )
    generate_dataset(tmp_path / "cars", 60, seed=0, size=(160, 120))
    conf = {"folder": str(tmp_path / "cars"), "name": "cars", "profile": False, "train_config": TINY}

    trained = _without_retries(dagbag.dags["autoinspect_training"], monkeypatch).test(run_conf=conf)

    assert trained.state == "success"
    assert _states(trained) == {"prepare_dataset": "success", "train_model": "success", "register_run": "success"}
    assert _return_value(trained, "register_run") == {"version": 1, "alias": CHAMPION, "failed_gates": []}
    (first,) = list_versions(settings)
    assert first.dataset is not None and first.dataset.name == "cars" and first.aliases == [CHAMPION]

    _review_photos(settings, tmp_path / "reviewed", 2)
    assert check_triggers(settings).fire
    dag = _without_retries(dagbag.dags["autoinspect_continuous_training"], monkeypatch)
    sensor = dag.task_dict["decide"]
    assert sensor.mode == "reschedule"
    monkeypatch.setattr(sensor, "poke_interval", 1)
    monkeypatch.setattr(sensor, "timeout", 2)
    monkeypatch.setattr(sensor, "soft_fail", True)

    run = dag.test()

    assert run.state == "success"
    assert _states(run) == {step: "success" for step in STEPS[:-1]} | {"decide": "skipped"}
    assert _reschedules(run, "decide") >= 1  # poked, "waiting", rescheduled (not held in one long poke)
    assert _return_value(run, "register_challenger") == 2
    assert "v2 against the champion on" in _return_value(run, "compare_with_champion")
    assert (settings.comparisons_dir / "v2" / "comparison.html").is_file()
    assert [model.version for model in list_versions(settings)] == [1, 2]
    assert get_by_alias(settings, CHAMPION).version == 1  # type: ignore[union-attr]
    assert get_by_alias(settings, CHALLENGER).version == 2  # type: ignore[union-attr]
    deployment = get_deployment(settings)
    assert deployment.mode is DeploymentMode.CANARY and deployment.canary_percent == 10.0
    assert decide_canary(settings, 2) == "waiting"  # no reviewed canary answers yet
    assert not check_triggers(settings).fire  # the pass was recorded: the two reviews count no more
    engine = make_engine(settings.store_url)
    last = PipelineRuns(engine).last(PIPELINE, RunStatus.SUCCEEDED)
    engine.dispose()
    assert last is not None and last.outcome == "v2 registered as challenger"
    assert len(list((settings.annotations_inbox.parent / "merged").iterdir())) == 1
