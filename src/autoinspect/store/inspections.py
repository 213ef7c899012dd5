"""Inspections: one vehicle's photos answered together, kept whole so a handler can fetch and hand over the answer.

Each photo's answer also goes to the prediction log (reviews, monitoring and retraining work per photo); this
table keeps what the client received for the vehicle (every photo's answer and the vehicle summary, as JSON), who
asked and when, so ``GET /v1/inspections/{id}`` returns exactly that answer later, whatever model serves by then.
Rows are never updated: an inspection is a record.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, Engine, Select, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from autoinspect.store.database import insert_ignoring_duplicates
from autoinspect.store.tables import Base, UTCDateTime

logger = logging.getLogger(__name__)


class InspectionRecord(Base):
    __tablename__ = "inspections"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    vehicle_id: Mapped[str] = mapped_column(String(128), index=True)
    client_reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))
    answer: Mapped[dict[str, Any]] = mapped_column(JSON)


class StoredInspection(BaseModel):
    """One inspection as stored; ``answer`` is the API's response body, which this layer does not interpret."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    inspection_id: str
    vehicle_id: str
    client_reference: str | None
    created_at: AwareDatetime
    created_by: str
    outcome: str
    answer: dict[str, Any]


class InspectionLog:
    """Writes and reads inspections; thread-safe (each call uses its own connection)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert_new = insert_ignoring_duplicates(engine.dialect.name, InspectionRecord.inspection_id)

    def add(self, inspection: StoredInspection) -> StoredInspection:
        """Store ``inspection`` and return what is stored under its id: the first one when a resent request (the
        same idempotency key) raced it here, so both callers get one and the same answer."""
        with self._engine.begin() as connection:
            connection.execute(self._insert_new, [inspection.model_dump()])
        stored = self.get(inspection.inspection_id)
        assert stored is not None  # just inserted, or inserted before; rows are never deleted
        return stored

    def get(self, inspection_id: str) -> StoredInspection | None:
        found = self._read(select(InspectionRecord).where(InspectionRecord.inspection_id == inspection_id))
        return found[0] if found else None

    def find(
        self,
        *,
        vehicle_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[StoredInspection], int]:
        """A page of inspections, newest first, with the total that match (for paging)."""
        query = select(InspectionRecord)
        if vehicle_id is not None:
            query = query.where(InspectionRecord.vehicle_id == vehicle_id)
        if since is not None:
            query = query.where(InspectionRecord.created_at >= since)
        if until is not None:
            query = query.where(InspectionRecord.created_at < until)
        with self._engine.connect() as connection:
            total = connection.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        newest_first = query.order_by(InspectionRecord.created_at.desc(), InspectionRecord.id.desc())
        return self._read(newest_first.limit(limit).offset(offset)), total

    def _read(self, query: Select[InspectionRecord]) -> list[StoredInspection]:
        with Session(self._engine) as session:
            return [StoredInspection.model_validate(row) for row in session.scalars(query)]
