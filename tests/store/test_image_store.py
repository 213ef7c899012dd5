"""Content-addressed photos: idempotent, atomic, safe against hashes that are really paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from autoinspect.store import ImageStore


def test_put_stores_by_sha256_under_a_two_character_fan_out(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    sha = store.put(b"photo")
    assert sha == hashlib.sha256(b"photo").hexdigest()
    assert store.path(sha) == tmp_path / "images" / sha[:2] / sha
    assert store.get(sha) == b"photo"


def test_put_is_idempotent_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    first = store.put(b"same bytes")
    mtime = store.path(first).stat().st_mtime_ns
    assert store.put(b"same bytes") == first
    assert store.path(first).stat().st_mtime_ns == mtime
    assert [path.name for path in tmp_path.rglob("*") if path.is_file()] == [first]


def test_get_of_an_unknown_hash_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ImageStore(tmp_path).get("0" * 64)


@pytest.mark.parametrize("sha", ["../../etc/passwd", "AB" * 32, "ab" * 31])
def test_path_refuses_anything_but_a_sha256_digest(tmp_path: Path, sha: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        ImageStore(tmp_path).path(sha)
