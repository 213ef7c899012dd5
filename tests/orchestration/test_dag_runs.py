"""DAG runs with ``dag.test()``: the real scheduler loop and task runner, in this process, on a SQLite metadata DB.

The batch inference DAG runs on real photos from the sample (plus one red photo and one corrupt file, so every
kind of line is there) against a champion in a real MLflow registry: one mapped task per shard, one merged line
per photo, the same lines as the local runner. The annotations DAG emits the asset event that queues a
continuous-training run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from redbox import photo

from autoinspect.config import Settings
from autoinspect.pipelines.batch_inference import run_batch, run_folder

REAL_PHOTOS = 5
SHARD_SIZE = 3


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

    folder = run_folder(worker_settings, run.run_id)
    lines = _lines(folder / "predictions.jsonl")
    assert [Path(line["file"]).name for line in lines] == sorted(path.name for path in intake.iterdir())
    assert len(list((folder / "parts").iterdir())) == shards
    *real, corrupt, red = lines
    assert all(line["verdict"] is not None and line["error"] is None for line in real)
    assert corrupt["verdict"] is None and corrupt["error"]
    assert red["verdict"] == ["dent", "scratch"] and red["needs_review"] is True

    local = run_batch(worker_settings, intake, shard_size=SHARD_SIZE, out=tmp_path / "local.jsonl", model="champion")
    assert _lines(local.output) == lines  # the DAG and the local runner give the same answers


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
