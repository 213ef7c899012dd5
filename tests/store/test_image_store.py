"""Content-addressed photos, in a folder and in S3: idempotent, write-once, safe against hashes that are paths."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3 import s3_server

from autoinspect.config import Settings, StorageSettings
from autoinspect.object_storage import LocalObjects, S3Objects, object_store
from autoinspect.store import ImageStore


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImageStore]:
    """The image store on each backend the settings can name."""
    if request.param == "folder":
        yield ImageStore(tmp_path / "images")
        return
    with s3_server(monkeypatch, "photos") as endpoint:
        settings = Settings(
            home=tmp_path / "home", storage=StorageSettings(images_url="s3://photos/served", s3_endpoint_url=endpoint)
        )
        yield ImageStore.for_settings(settings)


def test_put_stores_by_sha256_under_a_two_character_fan_out(store: ImageStore) -> None:
    sha = store.put(b"photo")
    assert sha == hashlib.sha256(b"photo").hexdigest()
    assert store.key(sha) == f"{sha[:2]}/{sha}"
    assert store.objects.exists(store.key(sha))
    assert store.get(sha) == b"photo"


def test_put_is_idempotent_and_never_overwrites(store: ImageStore) -> None:
    first = store.put(b"same bytes")
    assert store.put(b"same bytes") == first
    assert not store.objects.create(store.key(first), b"other bytes under the same key")
    assert store.get(first) == b"same bytes"


def test_replicas_storing_one_photo_at_once_all_succeed_and_one_writes_it(store: ImageStore) -> None:
    data = b"a photo two replicas receive together"
    key = store.key(hashlib.sha256(data).hexdigest())
    wrote: list[bool] = []
    threads = [threading.Thread(target=lambda: wrote.append(store.objects.create(key, data))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wrote) == [False] * 5 + [True]
    assert store.get(hashlib.sha256(data).hexdigest()) == data


def test_get_of_an_unknown_hash_raises_file_not_found_and_find_says_none(store: ImageStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get("0" * 64)
    assert store.find("0" * 64) is None and store.local_file("0" * 64) is None


def test_local_file_is_the_photo_for_tools_that_open_files(store: ImageStore) -> None:
    sha = store.put(b"jpeg bytes")
    local = store.local_file(sha)
    assert local is not None and local.read_bytes() == b"jpeg bytes"
    assert store.local_file(sha) == local  # downloaded once, then the cached copy
    if store.cache is not None:  # the bucket: its copies go to the home's cache, never to the working folder
        assert local.is_relative_to(store.cache)
        with pytest.raises(ValueError, match="needs a cache folder"):
            ImageStore(store.objects).local_file(sha)


def test_the_folder_store_keeps_each_photo_as_one_file(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    sha = store.put(b"photo")
    assert store.local_file(sha) == tmp_path / sha[:2] / sha
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == [sha]  # no temporary file left


def test_settings_pick_the_backend() -> None:
    assert isinstance(ImageStore.for_settings(Settings(home=Path("h"))).objects, LocalObjects)
    s3 = object_store("s3://bucket/some/prefix", endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Objects) and s3.location == "s3://bucket/some/prefix"
    with pytest.raises(ValueError, match="s3://"):
        StorageSettings(images_url="/shared/photos")


@pytest.mark.parametrize("sha", ["../../etc/passwd", "AB" * 32, "ab" * 31])
def test_keys_refuse_anything_but_a_sha256_digest(tmp_path: Path, sha: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        ImageStore(tmp_path).get(sha)


@pytest.mark.parametrize("key", ["../x", "/etc/passwd", "a//b", "a/./b", ""])
def test_object_keys_stay_inside_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="object key"):
        LocalObjects(tmp_path).create(key, b"x")
