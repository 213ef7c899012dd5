"""What holds key hashes, vehicle ids and reviews is owner-only, even under a permissive umask."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoinspect.config import Settings
from autoinspect.mlflow_setup import configure_mlflow
from autoinspect.pipelines.stack import local_admin_key
from autoinspect.private_files import write_private
from autoinspect.store import ApiKeys, Scope, make_engine, open_store


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022 (files 0644, folders 0755): what made the databases world-readable before."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_a_new_home_and_its_databases_are_owner_only(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    configure_mlflow(settings)
    with open_store(settings.store_url) as engine:
        ApiKeys(engine).create("someone", [Scope.INSPECT])
        journals = list(settings.home.glob("autoinspect.db-*"))  # WAL and shared memory, while a connection is open
        assert journals and all(_mode(journal) == 0o600 for journal in journals), journals
    assert _mode(settings.home) == 0o700
    for name in ("mlflow.db", "autoinspect.db"):
        assert _mode(settings.home / name) == 0o600, name


def test_an_existing_database_keeps_its_owners_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared.db"
    shared.touch(mode=0o640)
    shared.chmod(0o640)
    make_engine(f"sqlite:///{shared}").dispose()
    assert _mode(shared) == 0o640


def test_a_replaced_admin_key_is_owner_only_even_if_the_stale_one_was_not(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    stale = settings.serving_dir / "admin.key"
    stale.parent.mkdir(parents=True)
    stale.write_text("revoked-or-foreign-token")
    stale.chmod(0o644)
    assert local_admin_key(settings) == stale
    assert stale.read_text() != "revoked-or-foreign-token" and _mode(stale) == 0o600
    assert local_admin_key(settings).read_text() == stale.read_text()  # kept while it verifies


def test_write_private_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "secret"
    write_private(path, "x")
    assert path.read_text() == "x" and _mode(path) == 0o600
