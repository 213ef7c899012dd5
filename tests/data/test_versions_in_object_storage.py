"""Dataset versions in object storage (a real S3 API on loopback): made on one host, checked out on another.

Training from such a version on another host is the training DAG's test with every task on a home of its own
(``tests/orchestration/test_dag_runs.py``); here the store's side, without a training run.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import pytest
from s3 import s3_server

from autoinspect.config import Settings, StorageSettings
from autoinspect.data.versions import DatasetStore
from autoinspect.pipelines.dataset import prepare_dataset


def test_a_version_made_on_one_host_is_checked_out_on_another(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with s3_server(monkeypatch, "datasets") as endpoint:
        storage = StorageSettings(datasets_url="s3://datasets/team", s3_endpoint_url=endpoint)
        maker = Settings(home=tmp_path / "maker", storage=storage)
        prepared = prepare_dataset(maker, profile=False)  # the generated sample, versioned into the bucket
        assert not maker.datasets_dir.exists()  # nothing of the version on the maker's disk

        trainer = Settings(home=tmp_path / "trainer", storage=storage)
        store = DatasetStore.for_settings(trainer)
        manifest = store.resolve(prepared.version.name)
        assert manifest.digest == prepared.version.digest
        layout = store.materialise(manifest, trainer.checkouts_dir)
        for item in manifest.items:
            image = layout.image_dir(item.split) / item.name
            assert hashlib.sha256(image.read_bytes()).hexdigest() == item.image_sha256
        cached = list((trainer.cache_dir / "datasets" / "objects").rglob("*"))
        assert sum(path.is_file() for path in cached) >= len({i.image_sha256 for i in manifest.items})
        assert store.materialise(manifest, trainer.checkouts_dir).root == layout.root  # made once, then reused

        keys = [item["Key"] for item in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(
            Bucket="datasets")["Contents"]]  # fmt: skip
        assert f"team/versions/{prepared.version.digest}.json" in keys
        assert f"team/refs/{prepared.version.name}.json" in keys
        first = prepared.version.items[0].image_sha256
        assert not store.objects.create(store.object_key(first), b"not the photo")  # write-once
        assert store.history(prepared.version.name)[-1].digest == prepared.version.digest
