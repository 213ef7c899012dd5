"""A real service on loopback (red-box registry, uvicorn in a thread) and the UI's settings pointed at it.

The UI is then exercised as an operator uses it: through Streamlit (``AppTest`` or a real browser) and the API
over HTTP, with no stub between them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import served
from redbox import METADATA, export
from registered import register_versions
from served import KeyFactory, running_service

from autoinspect.config import ServingSettings, Settings, get_settings
from autoinspect.store import ApiKeys, Scope, make_engine


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (at the time of asking)."""
    return served.free_port()


@pytest.fixture(scope="session")
def redbox_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export(tmp_path_factory.mktemp("redbox") / "redbox.onnx", batch=None)


@pytest.fixture
def registry(tracked_settings: Settings, redbox_onnx: Path) -> Settings:
    """Versions 1 and 2 of the red-box model; version 1 is the champion."""
    settings = tracked_settings.model_copy(update={"serving": ServingSettings(poll_seconds=0.2, max_batch_files=4)})
    register_versions(settings, redbox_onnx, METADATA, metrics=[{"map50": 0.5}, {"map50": 0.6}])
    return settings


@pytest.fixture
def server(registry: Settings) -> Iterator[str]:
    with running_service(registry) as url:
        yield url


@pytest.fixture
def ui_env(registry: Settings, server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyFactory]:
    """Points the UI's settings at the running API and the registry's home; ``ui_env(scopes...)`` issues a key
    (named ``tester``) for a person to sign in with."""
    engine = make_engine(registry.store_url)
    api_keys = ApiKeys(engine)

    def keys(*scopes: Scope) -> str:
        return api_keys.create("tester", scopes or (Scope.INSPECT,)).token

    monkeypatch.setenv("AUTOINSPECT_HOME", str(registry.home))
    monkeypatch.setenv("AUTOINSPECT_UI__API_URL", server)
    get_settings.cache_clear()
    yield keys
    get_settings.cache_clear()
    engine.dispose()
