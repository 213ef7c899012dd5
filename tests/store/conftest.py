"""Store fixtures: every prediction-log test runs on SQLite in tmp_path and on the real local PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from postgres import postgres_schema
from sqlalchemy import Engine

from autoinspect.domain import Box, Detection
from autoinspect.store import PredictionEntry, PredictionLog, Route, create_schema, make_engine

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store engine with the schema created; PostgreSQL unreachable fails under CI and skips elsewhere."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
        create_schema(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    with postgres_schema() as url:
        pg_engine = make_engine(url)
        try:
            create_schema(pg_engine)
            yield pg_engine
        finally:
            pg_engine.dispose()


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
