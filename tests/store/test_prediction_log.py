"""The prediction log, on SQLite and on PostgreSQL: idempotent batches, time windows, review queue, round trip."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from autoinspect.store import PredictionEntry, PredictionLog, Route

EntryFactory = Callable[..., PredictionEntry]


def test_round_trip_keeps_every_field_and_returns_utc(
    log: PredictionLog, make_entry: EntryFactory, t0: datetime
) -> None:
    entry = make_entry(1)
    shifted = entry.model_copy(update={"request_id": "tz", "created_at": t0.astimezone(timezone(timedelta(hours=5)))})
    assert log.write([entry, shifted]) == 2
    stored = log.between(t0 - timedelta(days=1), t0 + timedelta(days=1))
    assert stored[1] == entry
    assert stored[0].created_at == t0 and stored[0].created_at.utcoffset() == timedelta(0)
    assert stored[1].detections[0].box.x2 == 0.3


def test_write_skips_duplicate_request_ids_within_and_across_batches(
    log: PredictionLog, make_entry: EntryFactory, t0: datetime
) -> None:
    assert log.write([make_entry(1), make_entry(2), make_entry(1)]) == 2
    assert log.write([make_entry(2), make_entry(3)]) == 1
    assert log.write([]) == 0
    assert log.count() == 3


def test_between_is_half_open_and_oldest_first(log: PredictionLog, make_entry: EntryFactory, t0: datetime) -> None:
    log.write([make_entry(i) for i in (5, 1, 3, 2, 4)])
    window = log.between(t0 + timedelta(minutes=2), t0 + timedelta(minutes=4))
    assert [entry.request_id for entry in window] == ["req-000002", "req-000003"]


def test_needs_review_returns_the_newest_flagged_entries(
    log: PredictionLog, make_entry: EntryFactory, t0: datetime
) -> None:
    log.write([make_entry(i, needs_review=i % 3 == 0) for i in range(10)])
    assert [entry.request_id for entry in log.needs_review(limit=2)] == ["req-000009", "req-000006"]


def test_optional_fields_and_none_verdict_are_stored_as_given(
    log: PredictionLog, make_entry: EntryFactory, t0: datetime
) -> None:
    entry = PredictionEntry(
        request_id="shadow-1",
        created_at=t0,
        model_version="8",
        route=Route.SHADOW,
        verdict="None",
        needs_review=False,
        max_score=0.0,
        latency_ms=3.0,
    )
    log.write([entry])
    assert log.between(t0, t0 + timedelta(seconds=1)) == [entry]


def test_entry_rejects_a_verdict_that_is_neither_none_nor_a_class_list(make_entry: EntryFactory) -> None:
    with pytest.raises(ValueError, match="verdict"):
        make_entry(1).model_validate({**make_entry(1).model_dump(), "verdict": "scratch"})
