"""The inspections table on SQLite and on the real local PostgreSQL: idempotent inserts, filters and paging."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from autoinspect.store import InspectionLog, StoredInspection
from conftest import T0


def _inspection(name: str, vehicle: str, minutes: int, outcome: str = "clean") -> StoredInspection:
    return StoredInspection(
        inspection_id=name,
        vehicle_id=vehicle,
        client_reference=None,
        created_at=T0 + timedelta(minutes=minutes),
        created_by="clerk",
        outcome=outcome,
        answer={"summary": {"outcome": outcome}, "photos": [{"index": 0}]},
    )


def test_the_first_inspection_stored_under_an_id_wins(engine: Engine) -> None:
    inspections = InspectionLog(engine)
    first = inspections.add(_inspection("a", "V1", 0))
    again = inspections.add(_inspection("a", "V1", 5, outcome="damaged"))  # a resent request racing the first
    assert again == first and again.outcome == "clean"
    assert inspections.get("a") == first and inspections.get("b") is None


def test_inspections_are_found_by_vehicle_and_time_newest_first_in_pages(engine: Engine) -> None:
    inspections = InspectionLog(engine)
    for minute, (name, vehicle) in enumerate([("a", "V1"), ("b", "V2"), ("c", "V1"), ("d", "V1")]):
        inspections.add(_inspection(name, vehicle, minute))
    page, total = inspections.find(vehicle_id="V1", limit=2)
    assert [i.inspection_id for i in page] == ["d", "c"] and total == 3
    page, total = inspections.find(vehicle_id="V1", limit=2, offset=2)
    assert [i.inspection_id for i in page] == ["a"] and total == 3
    page, total = inspections.find(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [i.inspection_id for i in page] == ["c", "b"] and total == 2
    assert page[0].created_at == T0 + timedelta(minutes=2)  # read back tz-aware, in UTC
