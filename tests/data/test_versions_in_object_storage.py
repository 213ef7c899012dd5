"""Dataset versions in object storage (a real S3 API on loopback): made on one host, trained from on another."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from s3 import s3_server

from autoinspect.config import Settings, StorageSettings
from autoinspect.data.versions import DatasetStore
from autoinspect.pipelines.dataset import prepare_dataset
from autoinspect.pipelines.training import train_model
from autoinspect.training.base import TrainConfig


def test_a_version_made_on_one_host_is_trained_from_on_another(
    tracked_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with s3_server(monkeypatch, "datasets") as endpoint:
        storage = StorageSettings(datasets_url="s3://datasets/team", s3_endpoint_url=endpoint)
        maker = Settings(home=tmp_path / "maker", storage=storage)
        prepared = prepare_dataset(maker, profile=False)  # the generated sample, versioned into the bucket
        assert not maker.datasets_dir.exists()  # nothing of the version on the maker's disk

        trainer = tracked_settings.model_copy(update={"storage": storage})
        assert trainer.home != maker.home
        outcome = train_model(trainer, prepared.version.name, TrainConfig(epochs=1, imgsz=96, batch=8, workers=0))
        assert outcome.dataset == prepared.version.ref
        cached = list((trainer.cache_dir / "datasets" / "objects").rglob("*"))
        assert sum(path.is_file() for path in cached) >= len({i.image_sha256 for i in prepared.version.items})

        keys = [item["Key"] for item in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
            Bucket="datasets")["Contents"]]  # fmt: skip
        assert f"team/versions/{prepared.version.digest}.json" in keys
        assert f"team/refs/{prepared.version.name}.json" in keys
        store = DatasetStore.for_settings(trainer)
        first = prepared.version.items[0].image_sha256
        assert not store.objects.create(store.object_key(first), b"not the photo")  # write-once
        assert store.history(prepared.version.name)[-1].digest == prepared.version.digest
