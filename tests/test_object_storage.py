"""Object storage, in a folder and in S3 (moto's server on loopback): listing, and the one replacing write."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3 import s3_server

from autoinspect.object_storage import ObjectStore, object_store


@pytest.fixture(params=["folder", "s3"])
def objects(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    if request.param == "folder":
        yield object_store(tmp_path / "objects")
        return
    with s3_server(monkeypatch, "bucket") as endpoint:
        yield object_store("s3://bucket/team/datasets", endpoint_url=endpoint)


def test_keys_lists_by_prefix_without_temporary_files(objects: ObjectStore) -> None:
    for key in ("versions/ab1.json", "versions/ab2.json", "versions/cd3.json", "refs/red.json", "objects/ab/ab1"):
        assert objects.create(key, b"{}")
    objects.update("refs/blue.json", lambda old: b"{}")
    assert objects.keys("versions/ab") == ["versions/ab1.json", "versions/ab2.json"]
    assert objects.keys("refs/") == ["refs/blue.json", "refs/red.json"]
    assert objects.keys("nothing/") == []


def test_concurrent_updates_from_many_writers_lose_nothing(objects: ObjectStore) -> None:
    """Eight hosts appending to one dataset name's history at once: every append is kept."""

    def append(item: int) -> None:
        objects.update("refs/red.json", lambda old: json.dumps([*json.loads(old or b"[]"), item]).encode())

    threads = [threading.Thread(target=append, args=(item,)) for item in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(json.loads(objects.read("refs/red.json"))) == list(range(8))


def test_written_objects_are_never_replaced_and_missing_ones_say_so(objects: ObjectStore, tmp_path: Path) -> None:
    assert objects.create("objects/ab/abc", b"first") and not objects.create("objects/ab/abc", b"second")
    assert objects.read("objects/ab/abc") == b"first" and objects.exists("objects/ab/abc")
    assert not objects.exists("objects/ab/abd")
    with pytest.raises(FileNotFoundError):
        objects.read("objects/ab/abd")
    assert objects.local_file("objects/ab/abd", tmp_path / "cache") is None
