"""Store fixtures: every prediction-log test runs on SQLite in tmp_path and on the real local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from autoinspect.domain import Box, Detection
from autoinspect.store import PredictionEntry, PredictionLog, Route, create_schema, make_engine

POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
"""The local PostgreSQL (trust auth) that CI provides; each test gets its own schema in it."""
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _postgres_engine(schema: str) -> Engine:
    """An engine whose connections see only ``schema`` (search_path), so parallel runs never collide."""
    return make_engine(f"{POSTGRES_URL}?connect_timeout=3&options=-csearch_path%3D{schema}")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store engine with the schema created; PostgreSQL unreachable fails under CI and skips elsewhere."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        create_schema(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    admin = make_engine(f"{POSTGRES_URL}?connect_timeout=3")
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL not reachable at {POSTGRES_URL}: {error.orig}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    pg_engine = _postgres_engine(schema)
    try:
        create_schema(pg_engine)
        yield pg_engine
    finally:
        pg_engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def log(engine: Engine) -> PredictionLog:
    return PredictionLog(engine)


EntryFactory = Callable[..., PredictionEntry]
"""``make_entry(index, needs_review=False)``; test modules repeat this alias (tests are not a package)."""


@pytest.fixture
def t0() -> datetime:
    """The creation time of entry 0; entry ``i`` is ``i`` minutes later."""
    return T0


@pytest.fixture
def make_entry() -> EntryFactory:
    return _make_entry


def _make_entry(index: int, *, needs_review: bool = False) -> PredictionEntry:
    """A realistic entry; ``index`` makes its request id and its time unique."""
    detections = [Detection(label="scratch", box=Box(x1=0.1, y1=0.2, x2=0.3, y2=0.4), confidence=0.5)]
    return PredictionEntry(
        request_id=f"req-{index:06d}",
        created_at=T0 + timedelta(minutes=index),
        model_version="7",
        route=Route.CHAMPION,
        verdict=["scratch"] if index % 2 else "None",
        detections=detections if index % 2 else [],
        needs_review=needs_review,
        max_score=0.5 if index % 2 else 0.0,
        latency_ms=12.5,
        features={"brightness": 0.4, "width": 640, "source": "intake"},
        image_sha256="ab" * 32,
        vehicle_id=f"VIN{index}",
    )
