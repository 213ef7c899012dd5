"""A real registry holding two versions of the red-box detector, and a running service on it.

The red-box model (see ``tests/support/redbox.py``) reports a scratch, a dent and a weak dent in the review band
for any photo with pure red in it, and nothing otherwise: answers are known exactly, so routing, logging and
swaps can be checked on real ONNX Runtime sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redbox import METADATA, export
from registered import register_versions
from served import KeyFactory

from autoinspect.config import ServingSettings, Settings
from autoinspect.serving.app import create_app
from autoinspect.store import ApiKeys, Scope, create_schema, make_engine


@pytest.fixture(scope="session")
def redbox_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tmp_path_factory.mktemp("redbox") / "redbox.onnx", batch=None)


@pytest.fixture
def registry(tracked_settings: Settings, redbox_onnx: Path, tmp_path: Path) -> Settings:
    """Settings on a registry with versions 1 and 2 of the red-box model; version 1 is the champion."""
    settings = tracked_settings.model_copy(
        update={
            "serving": ServingSettings(
                poll_seconds=0.2, max_upload_bytes=3_000_000, max_batch_files=4, max_pixels=4_000_000
            )
        }
    )
    register_versions(settings, redbox_onnx, METADATA, metrics=[{"map50": 0.5}, {"map50": 0.6}])
    return settings


@pytest.fixture
def make_key(registry: Settings) -> Iterator[KeyFactory]:
    """``make_key(Scope.INSPECT, ...)`` issues a real key in the service's store and returns its token."""
    engine = make_engine(registry.store_url)
    create_schema(engine)
    keys = ApiKeys(engine)
    yield lambda *scopes: keys.create("test", scopes or (Scope.INSPECT,)).token
    engine.dispose()


@pytest.fixture
def client(registry: Settings) -> Iterator[TestClient]:
    """The app, started (lifespan run: champion loaded, writer and poller running) and stopped after the test."""
    with TestClient(create_app(registry), raise_server_exceptions=False) as test_client:
        yield test_client
